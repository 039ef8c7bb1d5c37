"""The audit trail: who viewed or changed what, when."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from c3n_bot.store.models import AuditEvent


@dataclass(frozen=True)
class Actor:
    """Who acts: a staff user (through the dashboard or an API key), or the system."""

    type: str
    id: str | None
    ip: str | None = None


SYSTEM = Actor(type="system", id=None)


def record(
    db: Session,
    *,
    actor: Actor,
    action: str,
    now: datetime,
    patient_id: uuid.UUID | None = None,
    center_id: uuid.UUID | None = None,
    subject: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to the caller's transaction."""
    event = AuditEvent(**_values(actor, action, now, patient_id, center_id, subject, detail))
    db.add(event)
    return event


# Built once, and Core: a chart view writes one row, and the ORM's unit of work cost more
# than the INSERT.
_INSERT = insert(cast(Table, AuditEvent.__table__))


def write(
    db: Session,
    *,
    actor: Actor,
    action: str,
    now: datetime,
    patient_id: uuid.UUID | None = None,
    center_id: uuid.UUID | None = None,
    subject: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """As :func:`record`, inserted at once in the caller's transaction, without an object."""
    values = _values(actor, action, now, patient_id, center_id, subject, detail)
    db.execute(_INSERT, {**values, "note": None})


def _values(
    actor: Actor,
    action: str,
    now: datetime,
    patient_id: uuid.UUID | None,
    center_id: uuid.UUID | None,
    subject: str | None,
    detail: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "at": now,
        "actor_type": actor.type,
        "actor_id": actor.id,
        "action": action,
        "subject": subject,
        "patient_id": patient_id,
        "center_id": center_id,
        "ip": actor.ip,
        "detail": detail or {},
    }
