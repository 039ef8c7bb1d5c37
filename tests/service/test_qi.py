"""QI measures: weekly response rate and IBD remission, in the center's own weeks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from c3n_bot.service import qi
from c3n_bot.store.base import Condition
from c3n_bot.store.models import Center, DueWork, Patient
from c3n_bot.store.models.conversations import SubmissionStatus
from c3n_bot.store.models.scheduling import DueStatus
from tests.builders import make_center, make_contact, make_patient, make_submission, new_session

NEW_YORK = ZoneInfo("America/New_York")


def test_complete_weeks_are_local_mondays_before_the_current_week(now: datetime) -> None:
    # now: Monday 2 March 2026 15:00 UTC, 10:00 in New York: that week is not complete yet.
    weeks = qi.complete_weeks(now, NEW_YORK, count=3)
    assert [w.start.isoformat() for w in weeks] == ["2026-02-09", "2026-02-16", "2026-02-23"]
    assert weeks[-1].end_at == datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # midnight EST
    assert all(a.end_at == b.start_at for a, b in zip(weeks, weeks[1:], strict=False))


def test_a_week_across_the_spring_change_is_an_hour_short() -> None:
    (week,) = qi.complete_weeks(datetime(2026, 3, 16, 12, tzinfo=UTC), NEW_YORK, count=1)
    assert week.start.isoformat() == "2026-03-09"
    assert week.end_at - week.start_at == timedelta(weeks=1)
    (week,) = qi.complete_weeks(datetime(2026, 3, 10, 12, tzinfo=UTC), NEW_YORK, count=1)
    assert week.start.isoformat() == "2026-03-02"
    assert week.end_at - week.start_at == timedelta(weeks=1, hours=-1)  # 8 March, 02:00 -> 03:00


def test_remission_sweep_follows_each_patients_latest_report() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    t = datetime(2026, 1, 5, tzinfo=UTC)
    reports = [
        (a, t, 5.0),  # week 0: a in remission
        (b, t + timedelta(days=8), 40.0),  # week 1: b active
        (a, t + timedelta(days=9), 15.0),  # week 1: a flares
        (b, t + timedelta(days=9), None),  # no total: ignored
        (b, t + timedelta(days=20), 0.0),  # week 2: b in remission (a correction also lands so)
    ]
    ends = [t + timedelta(weeks=n) for n in range(1, 5)]
    measure = qi.remission_by_week(reports, ends)
    assert measure.numerators == (1, 0, 1, 1)
    assert measure.denominators == (1, 2, 2, 2)
    assert measure.percentages == [100.0, 0.0, 50.0, 50.0]


def test_no_reports_give_gaps() -> None:
    measure = qi.remission_by_week([], [datetime(2026, 1, 5, tzinfo=UTC)])
    assert measure.percentages == [None]


def _prompt(
    db: Session, patient: Patient, done_at: datetime, *, kind: str = "prompt", answered: bool
) -> None:
    contact = make_contact(db, now=done_at)
    session = new_session(contact=contact, now=done_at)
    db.add(session)
    db.flush()
    db.add(
        DueWork(
            key=f"test:{uuid.uuid4()}",
            kind=kind,
            patient_id=patient.id,
            flow_id="ibd_checkin",
            slot_at=done_at,
            due_at=done_at,
            status=DueStatus.DONE,
            session_id=session.id,
            created_at=done_at,
            done_at=done_at,
        )
    )
    submission = make_submission(db, patient=patient, now=done_at + timedelta(days=2))
    submission.session_id = session.id
    submission.status = SubmissionStatus.COMPLETED if answered else SubmissionStatus.PARTIAL
    db.flush()


def test_response_rate_counts_prompts_by_the_week_they_were_sent(
    db: Session, now: datetime
) -> None:
    center = make_center(db, now=now)
    other = make_patient(db, now=now)  # another center: never counted
    patient = make_patient(db, now=now, center=center)
    weeks = qi.complete_weeks(now, NEW_YORK, count=2)
    first, second = weeks[0].start_at, weeks[1].start_at
    _prompt(db, patient, first + timedelta(days=6, hours=23), answered=True)  # answered a week on
    _prompt(db, patient, first + timedelta(hours=1), answered=False)
    _prompt(db, patient, second + timedelta(days=1), kind="pre_visit", answered=True)
    _prompt(db, patient, second + timedelta(days=1), kind="visit_reminder", answered=True)
    _prompt(db, patient, first - timedelta(hours=1), answered=True)  # before the window
    _prompt(db, other, second + timedelta(days=1), answered=False)
    db.commit()

    measure = qi.response_rate(db, center_id=center.id, weeks=weeks)

    assert measure.numerators == (1, 1)
    assert measure.denominators == (2, 1)
    assert measure.percentages == [50.0, 100.0]


def _pucai(db: Session, patient: Patient, at: datetime, total: int) -> None:
    make_submission(db, patient=patient, now=at, flow_id="pucai", scores={"total": total})


def test_remission_reads_ibd_patients_latest_pucai(db: Session, now: datetime) -> None:
    center: Center = make_center(db, now=now)
    ibd = [make_patient(db, now=now, center=center) for _ in range(3)]
    cf = make_patient(db, now=now, center=center, condition=Condition.CF)
    weeks = qi.complete_weeks(now, NEW_YORK, count=2)
    start = weeks[0].start_at
    _pucai(db, ibd[0], start - timedelta(days=30), 5)  # remission, reported long ago
    _pucai(db, ibd[1], start + timedelta(days=1), 40)
    _pucai(db, ibd[1], start + timedelta(days=8), 9)  # in remission by the second week
    _pucai(db, ibd[2], now, 0)  # after the last complete week: not yet counted
    _pucai(db, cf, start, 0)  # not an IBD patient
    make_submission(db, patient=ibd[2], now=start, flow_id="phq9", scores={"total": 0})
    db.commit()

    measure = qi.remission(db, center_id=center.id, weeks=weeks)

    assert measure.numerators == (1, 2)
    assert measure.denominators == (2, 2)
