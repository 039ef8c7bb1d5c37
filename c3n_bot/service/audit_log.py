"""Reading the audit trail: filters, newest first, one page at a time.

An admin reads the events of their own centers and the events tied to no center (sign-ins,
API keys). Pages are keyed by event id, so a page stays put while new events arrive.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from c3n_bot.store.models import AuditEvent, Patient, StaffUser

PAGE_SIZE = 50


@dataclass(frozen=True)
class AuditFilter:
    """What to narrow the trail to; every field is optional."""

    actor: str = ""  # a staff email or an actor id
    action: str = ""  # an action, or its prefix ("patient." finds every patient action)
    patient: str = ""  # a patient's external id or id
    since: date | None = None  # from this UTC day on
    until: date | None = None  # up to and including this UTC day


@dataclass(frozen=True)
class AuditPage:
    """One page of events, who acted (email by actor id), whose record, and the next page."""

    events: Sequence[AuditEvent]
    actors: dict[str, str]
    patients: dict[uuid.UUID, str]
    next_before: int | None


def read(
    db: Session,
    *,
    where: AuditFilter,
    centers: set[uuid.UUID],
    before: int | None = None,
    limit: int = PAGE_SIZE,
) -> AuditPage:
    """Events matching the filter, newest first, older than event id `before`."""
    conditions = _conditions(db, where, centers)
    if before is not None:
        conditions.append(AuditEvent.id < before)
    query = select(AuditEvent).where(*conditions).order_by(AuditEvent.id.desc())
    events = db.scalars(query.limit(limit + 1)).all()
    more = len(events) > limit
    events = events[:limit]
    return AuditPage(
        events=events,
        actors=_emails(db, {e.actor_id for e in events if e.actor_id}),
        patients=_external_ids(db, {e.patient_id for e in events if e.patient_id}),
        next_before=events[-1].id if more else None,
    )


def _conditions(
    db: Session, where: AuditFilter, centers: set[uuid.UUID]
) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = [
        or_(AuditEvent.center_id.in_(centers), AuditEvent.center_id.is_(None))
    ]
    actor = where.actor.strip()
    if actor:
        user = db.scalar(select(StaffUser.id).where(StaffUser.email == actor.lower()))
        found.append(AuditEvent.actor_id == (str(user) if user else actor))
    action = where.action.strip()
    if action:
        found.append(AuditEvent.action.startswith(action, autoescape=True))
    if where.patient.strip():
        found.append(AuditEvent.patient_id.in_(_patient_ids(db, where.patient.strip(), centers)))
    if where.since is not None:
        found.append(AuditEvent.at >= datetime.combine(where.since, time(), UTC))
    if where.until is not None:
        found.append(AuditEvent.at < datetime.combine(where.until + timedelta(days=1), time(), UTC))
    return found


def _patient_ids(db: Session, ref: str, centers: set[uuid.UUID]) -> list[uuid.UUID]:
    try:
        return [uuid.UUID(ref)]
    except ValueError:
        query = select(Patient.id).where(Patient.external_id == ref, Patient.center_id.in_(centers))
        return list(db.scalars(query))


def _emails(db: Session, actor_ids: set[str]) -> dict[str, str]:
    ids = []
    for actor_id in actor_ids:
        try:
            ids.append(uuid.UUID(actor_id))
        except ValueError:
            continue
    if not ids:
        return {}
    rows = db.execute(select(StaffUser.id, StaffUser.email).where(StaffUser.id.in_(ids)))
    return {str(row.id): row.email for row in rows}


def _external_ids(db: Session, patient_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not patient_ids:
        return {}
    rows = db.execute(select(Patient.id, Patient.external_id).where(Patient.id.in_(patient_ids)))
    return {row.id: row.external_id for row in rows}
