"""The care team's inbox: open alerts (urgent first) and the newest submissions of its centers."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Generic, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from c3n_bot.service import inbox_queries as queries
from c3n_bot.store.models.conversations import Severity, SubmissionStatus

PAGE_SIZE = 50
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T = TypeVar("T")


@dataclass(frozen=True)
class InboxFilter:
    """What the inbox form narrows to; a day range is read in `zone` (the chosen center's)."""

    center_id: uuid.UUID | None = None
    flow_id: str | None = None
    band: str | None = None
    since: date | None = None
    until: date | None = None

    def centers(self, allowed: set[uuid.UUID]) -> set[uuid.UUID]:
        """The allowed centers this filter keeps."""
        return allowed & {self.center_id} if self.center_id else set(allowed)

    def window(self, zone: ZoneInfo) -> tuple[datetime | None, datetime | None]:
        """The day range as UTC instants [start, end)."""

        def at_midnight(day: date) -> datetime:
            return datetime.combine(day, time(0), zone).astimezone(UTC)

        start = at_midnight(self.since) if self.since else None
        end = at_midnight(self.until + timedelta(days=1)) if self.until else None
        return start, end

    def narrowing(self, zone: ZoneInfo) -> queries.Narrowing:
        """The values the inbox's statements bind."""
        start, end = self.window(zone)
        return queries.Narrowing(flow=self.flow_id, band=self.band, start=start, end=end)


@dataclass(frozen=True)
class Cursor:
    """Where a page of submissions ends: keyset pagination on (authored_at, id), newest first."""

    authored_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        """A URL-safe token (whole microseconds: a float timestamp could lose one)."""
        micros = (self.authored_at - EPOCH) // timedelta(microseconds=1)
        return f"{micros}.{self.id.hex}"

    @classmethod
    def decode(cls, token: str) -> Cursor | None:
        """The cursor of a token, or None when it is not one."""
        micros, _, hex_id = token.partition(".")
        try:
            return cls(EPOCH + timedelta(microseconds=int(micros)), uuid.UUID(hex=hex_id))
        except (ValueError, OverflowError):
            return None


# Rows are named tuples: a page makes a hundred of them, four times faster than frozen dataclasses.
class PatientRef(NamedTuple):
    """Who a row is about, as the inbox names them."""

    id: uuid.UUID
    given_name: str
    family_name: str
    external_id: str
    center_id: uuid.UUID


class SubmissionRow(NamedTuple):
    """One submission in the inbox."""

    id: uuid.UUID
    patient: PatientRef
    flow_id: str
    status: SubmissionStatus
    scores: dict[str, Any]
    bands: dict[str, Any]
    authored_at: datetime
    version: int


class AlertRow(NamedTuple):
    """One open alert in the inbox."""

    id: uuid.UUID
    patient: PatientRef
    rule: str
    title: str
    severity: Severity
    raised_at: datetime
    due_by: datetime
    escalated_at: datetime | None

    def state(self, now: datetime) -> str:
        """escalated, overdue (past due, not escalated: a review alert) or open."""
        if self.escalated_at is not None:
            return "escalated"
        return "overdue" if self.due_by <= now else "open"


@dataclass(frozen=True)
class Page(Generic[T]):
    """Rows of one page, and whether more follow."""

    rows: Sequence[T]
    more: bool


def submissions_query(
    *,
    centers: set[uuid.UUID],
    filters: InboxFilter,
    zone: ZoneInfo,
    before: Cursor | None = None,
    limit: int = PAGE_SIZE,
) -> queries.Bound:
    """The inbox's main query: a page of the newest submissions with their patients, one row
    more than `limit` (to tell whether more follow)."""
    return queries.newest_submissions(
        sorted(filters.centers(centers)),
        filters.narrowing(zone),
        before=(before.authored_at, before.id) if before else None,
        limit=limit + 1,
    )


def submissions(
    db: Session,
    *,
    centers: set[uuid.UUID],
    filters: InboxFilter,
    zone: ZoneInfo,
    before: Cursor | None = None,
    limit: int = PAGE_SIZE,
) -> Page[SubmissionRow]:
    """A page of the newest submissions of the centers, newest first."""
    bound = submissions_query(
        centers=centers, filters=filters, zone=zone, before=before, limit=limit
    )
    # Columns in SubmissionRow's field order, then the patient's.
    width = len(queries.SUBMISSION_COLUMNS)
    rows = [
        SubmissionRow(row[0], PatientRef(*row[width:]), *row[1:width])
        for row in db.execute(bound.statement, bound.params)
    ]
    return Page(rows[:limit], len(rows) > limit)


def next_cursor(page: Page[SubmissionRow]) -> Cursor | None:
    """The cursor of the page after this one, if there is one."""
    if not page.more or not page.rows:
        return None
    last = page.rows[-1]
    return Cursor(last.authored_at, last.id)


def open_alerts(
    db: Session,
    *,
    centers: set[uuid.UUID],
    filters: InboxFilter,
    zone: ZoneInfo,
    offset: int = 0,
    limit: int = PAGE_SIZE,
) -> Page[AlertRow]:
    """Unacknowledged alerts of the centers, urgent first, then by due time."""
    bound = queries.open_alerts(
        sorted(filters.centers(centers)), filters.narrowing(zone), offset=offset, limit=limit + 1
    )
    # Columns: the id, the rest in AlertRow's field order, then the patient's. Run on the
    # session's connection: the rows are columns, and the ORM's handling of a statement (a
    # quarter of its cost at thirty alerts) would load no object.
    width = 1 + len(queries.ALERT_COLUMNS)
    rows = [
        AlertRow(row[0], PatientRef(*row[width:]), *row[1:width])
        for row in db.connection().execute(bound.statement, bound.params)
    ]
    return Page(rows[:limit], len(rows) > limit)
