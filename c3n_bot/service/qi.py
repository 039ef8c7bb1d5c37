"""A center's weekly quality-improvement measures: response rate and IBD remission.

Weeks run Monday 00:00 to Monday 00:00 in the center's timezone; only complete weeks count.

- Response rate: of the scheduled questionnaire prompts sent in the week (due work of kind
  prompt or pre_visit that started a conversation: status done, with a session, `done_at` in
  the week), the share whose conversation ended in a completed submission (at any time since:
  a prompt answered the next week still counts for the week it was sent).
- Remission: of the center's IBD patients with a completed PUCAI by the week's end, the share
  whose latest PUCAI total by then is below 10 (a correction replaces the report it corrects).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from c3n_bot.store.base import Condition
from c3n_bot.store.models import DueWork, Patient, Submission
from c3n_bot.store.models.conversations import SubmissionStatus
from c3n_bot.store.models.scheduling import DueStatus

WEEKS = 26
PROMPT_KINDS = ("prompt", "pre_visit")
REMISSION_FLOW = "pucai"
REMISSION_BELOW = 10.0


@dataclass(frozen=True)
class Week:
    """One local week as UTC instants [start_at, end_at)."""

    start: date
    start_at: datetime
    end_at: datetime


@dataclass(frozen=True)
class Measure:
    """A weekly proportion: numerator and denominator per week."""

    numerators: tuple[int, ...]
    denominators: tuple[int, ...]

    @property
    def percentages(self) -> list[float | None]:
        """Each week's share in percent; None for a week with no denominator."""
        return [
            100.0 * n / d if d else None
            for n, d in zip(self.numerators, self.denominators, strict=True)
        ]


def complete_weeks(now: datetime, zone: ZoneInfo, count: int = WEEKS) -> list[Week]:
    """The `count` complete local weeks before the current one, oldest first."""
    today = now.astimezone(zone).date()
    this_monday = today - timedelta(days=today.weekday())

    def instant(day: date) -> datetime:
        return datetime.combine(day, time(0), zone).astimezone(UTC)

    starts = [this_monday - timedelta(weeks=n) for n in range(count, 0, -1)]
    return [Week(s, instant(s), instant(s + timedelta(weeks=1))) for s in starts]


def response_rate(db: Session, *, center_id: uuid.UUID, weeks: Sequence[Week]) -> Measure:
    """Completed scheduled prompts over prompts sent, per week (one grouped query)."""
    first, last = weeks[0].start_at, weeks[-1].end_at
    sent = (
        select(
            _week_of(DueWork.done_at, weeks).label("week"),
            Submission.id.label("completed"),
        )
        .join(Patient, Patient.id == DueWork.patient_id)
        .outerjoin(
            Submission,
            and_(
                Submission.session_id == DueWork.session_id,
                Submission.status == SubmissionStatus.COMPLETED,
            ),
        )
        .where(
            Patient.center_id == center_id,
            DueWork.kind.in_(PROMPT_KINDS),
            DueWork.status == DueStatus.DONE,
            DueWork.session_id.is_not(None),
            # due_at <= done_at: this bound lets the (status, due_at) index narrow the scan.
            DueWork.due_at < last,
            DueWork.done_at >= first,
            DueWork.done_at < last,
        )
        .subquery()
    )
    # Grouped outside: PostgreSQL cannot match a GROUP BY CASE whose parameters differ.
    counts = select(sent.c.week, func.count(), func.count(sent.c.completed)).group_by(sent.c.week)
    return _measure(db.execute(counts), len(weeks))


def remission(db: Session, *, center_id: uuid.UUID, weeks: Sequence[Week]) -> Measure:
    """IBD patients whose latest PUCAI total is below 10, over those with one, per week end."""
    reports = db.execute(
        select(Submission.patient_id, Submission.authored_at, Submission.scores["total"].as_float())
        .join(Patient, Patient.id == Submission.patient_id)
        .where(
            Patient.center_id == center_id,
            Patient.condition == Condition.IBD,
            Submission.flow_id == REMISSION_FLOW,
            Submission.status == SubmissionStatus.COMPLETED,
            Submission.authored_at < weeks[-1].end_at,
        )
        .order_by(Submission.authored_at, Submission.version)
    )
    return remission_by_week(reports, [week.end_at for week in weeks])


def remission_by_week(
    reports: Iterable[tuple[uuid.UUID, datetime, float | None]], week_ends: Sequence[datetime]
) -> Measure:
    """Sweep reports in time order (a correction after its original): at each week's end,
    patients whose latest total is below REMISSION_BELOW over patients with a total."""
    latest: dict[uuid.UUID, bool] = {}
    in_remission = 0
    numerators: list[int] = []
    denominators: list[int] = []
    pending = iter(reports)
    report = next(pending, None)
    for end in week_ends:
        while report is not None and report[1] < end:
            patient_id, _, total = report
            if total is not None:
                in_remission -= latest.get(patient_id, False)
                latest[patient_id] = total < REMISSION_BELOW
                in_remission += latest[patient_id]
            report = next(pending, None)
        numerators.append(in_remission)
        denominators.append(len(latest))
    return Measure(tuple(numerators), tuple(denominators))


def _week_of(column: Any, weeks: Sequence[Week]) -> ColumnElement[Any]:
    # Week boundaries are computed here in the center's zone (DST-correct) and compared in
    # SQL, which keeps the bucketing portable between SQLite and PostgreSQL.
    return case(*((column < week.end_at, index) for index, week in enumerate(weeks)))


def _measure(rows: Iterable[tuple[Any, int, int]], count: int) -> Measure:
    numerators, denominators = [0] * count, [0] * count
    for week, sent, completed in rows:
        if week is not None:
            denominators[int(week)], numerators[int(week)] = sent, completed
    return Measure(tuple(numerators), tuple(denominators))
