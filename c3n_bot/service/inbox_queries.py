"""The inbox's SQL, built once per filter shape and then run with bound parameters.

Building and hashing a statement of this size costs more Python time than the database
spends running it, so each shape (which filters are set, how many centers) is built once.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    bindparam,
    false,
    func,
    select,
    tuple_,
    union_all,
)

from c3n_bot.store.models import Alert, ConversationSession, Patient, Submission

# Which score's band the band filter reads: every shipped questionnaire scores a "total".
BAND_SCORE = "total"
SUBMISSION_COLUMNS = (
    Submission.id,
    Submission.flow_id,
    Submission.status,
    Submission.scores,
    Submission.bands,
    Submission.authored_at,
    Submission.version,
)
# After the id, in AlertRow's field order.
ALERT_COLUMNS = (
    Alert.rule,
    Alert.title,
    Alert.severity,
    Alert.raised_at,
    Alert.due_by,
    Alert.escalated_at,
)
PATIENT_COLUMNS = (
    Patient.id,
    Patient.given_name,
    Patient.family_name,
    Patient.external_id,
    Patient.center_id,
)


@dataclass(frozen=True)
class Bound:
    """A reusable statement and this request's values for it."""

    statement: Select[*tuple[Any, ...]]
    params: dict[str, Any]


@dataclass(frozen=True)
class Narrowing:
    """The filter values a statement binds; None leaves a filter out."""

    flow: str | None = None
    band: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def values(self) -> dict[str, Any]:
        """The values that are set, by parameter name."""
        named = {"flow": self.flow, "band": self.band, "start": self.start, "end": self.end}
        return {key: value for key, value in named.items() if value is not None}


def newest_submissions(
    centers: Sequence[uuid.UUID],
    narrowing: Narrowing,
    *,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Bound:
    """A page of the newest submissions of the centers with their patients, newest first.

    Each center's newest rows come in index order (center_id, authored_at, id) with their own
    limit, and only those few are merged and joined: one ORDER BY over several centers would
    sort every row of them instead."""
    params = narrowing.values()
    if before is not None:
        params.update(before_at=before[0], before_id=before[1])
    shape = frozenset(params)
    params.update({f"center_{n}": center for n, center in enumerate(centers)}, limit=limit)
    return Bound(_newest_statement(len(centers), shape), params)


def open_alerts(
    centers: Sequence[uuid.UUID], narrowing: Narrowing, *, offset: int, limit: int
) -> Bound:
    """Unacknowledged alerts of the centers with their patients: urgent first, then by due
    time (index ix_alerts_inbox); a band keeps alerts whose submission is in it."""
    params = narrowing.values()
    shape = frozenset(params)
    params.update({f"center_{n}": center for n, center in enumerate(centers)})
    params.update(offset=offset, limit=limit)
    return Bound(_alerts_statement(len(centers), shape), params)


def _narrowed(
    query: Select[*tuple[Any, ...]], shape: frozenset[str], *, flow: Any, at: Any
) -> Select[*tuple[Any, ...]]:
    """The optional filters of a shape, on the given flow and time columns."""
    if "flow" in shape:
        query = query.where(flow == bindparam("flow"))
    if "band" in shape:
        query = query.where(Submission.bands[BAND_SCORE].as_string() == bindparam("band"))
    if "start" in shape:
        query = query.where(at >= bindparam("start", type_=at.type))
    if "end" in shape:
        query = query.where(at < bindparam("end", type_=at.type))
    return query


@functools.lru_cache(maxsize=256)
def _newest_statement(count: int, shape: frozenset[str]) -> Select[*tuple[Any, ...]]:
    members = [_newest_of_center(n, shape) for n in range(count)] or [
        _newest_of_center(None, shape)
    ]
    merged = (members[0] if len(members) == 1 else union_all(*members)).subquery()
    return (
        select(*(merged.c[column.key] for column in SUBMISSION_COLUMNS), *PATIENT_COLUMNS)
        .join(Patient, Patient.id == merged.c.patient_id)
        .order_by(merged.c.authored_at.desc(), merged.c.id.desc())
        .limit(_limit())
    )


def _newest_of_center(n: int | None, shape: frozenset[str]) -> Select[*tuple[Any, ...]]:
    center = Submission.center_id == bindparam(f"center_{n}") if n is not None else false()
    query = (
        select(*SUBMISSION_COLUMNS, Submission.patient_id)
        .where(center)
        .order_by(Submission.authored_at.desc(), Submission.id.desc())
        .limit(_limit())
    )
    query = _narrowed(query, shape, flow=Submission.flow_id, at=Submission.authored_at)
    if "before_at" in shape:
        key = tuple_(Submission.authored_at, Submission.id)
        at = bindparam("before_at", type_=Submission.authored_at.type)
        query = query.where(key < tuple_(at, bindparam("before_id", type_=Submission.id.type)))
    # SQLite refuses ORDER BY and LIMIT on a member of a compound select: wrap each one.
    return select(query.subquery())


@functools.lru_cache(maxsize=256)
def _alerts_statement(count: int, shape: frozenset[str]) -> Select[*tuple[Any, ...]]:
    # One bound value per center, not an expanding IN: SQLAlchemy renders an expanding
    # parameter's SQL again on every execution, which cost more than the query.
    centers = [bindparam(f"center_{n}", type_=Alert.center_id.type) for n in range(count)]
    query: Select[*tuple[Any, ...]] = (
        select(Alert.id, *ALERT_COLUMNS, *PATIENT_COLUMNS)
        .join(Patient, Patient.id == Alert.patient_id)
        .where(
            Alert.center_id.in_(centers) if centers else false(),
            Alert.acknowledged_at.is_(None),
        )
        # "urgent" sorts after "review": descending puts urgent first.
        .order_by(Alert.severity.desc(), Alert.due_by, Alert.id)
        .offset(bindparam("offset", type_=Integer))
        .limit(_limit())
    )
    # The flow and band are the submission's; an alert raised mid-flow has only its session.
    flow = func.coalesce(Submission.flow_id, ConversationSession.flow_id)
    if "flow" in shape or "band" in shape:
        query = query.outerjoin(Submission, Submission.id == Alert.submission_id)
    if "flow" in shape:
        query = query.outerjoin(ConversationSession, ConversationSession.id == Alert.session_id)
    return _narrowed(query, shape, flow=flow, at=Alert.raised_at)


def _limit() -> Any:
    return bindparam("limit", type_=Integer)
