"""Non-response: one gentle nudge when a prompted flow got no answer for a day."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.service import sessions, timing
from c3n_bot.service.context import Services
from c3n_bot.service.due import quiet_hours_of
from c3n_bot.store.models import (
    ChannelIdentity,
    Contact,
    ContactPatient,
    ConversationSession,
    Patient,
)
from c3n_bot.store.models.conversations import SessionStatus

NUDGE_AFTER = timedelta(hours=24)
PROMPTED = ("scheduled", "manual")


def nudge_silent(
    db: Session,
    now: datetime,
    services: Services,
    *,
    after: timedelta = NUDGE_AFTER,
    batch: int = 500,
) -> int:
    """Clock task: re-ask the open question once, outside quiet hours; returns nudges sent."""
    silent = db.scalars(
        select(ConversationSession)
        .where(
            ConversationSession.status == SessionStatus.ACTIVE,
            ConversationSession.trigger.in_(PROMPTED),
            ConversationSession.updated_at <= now - after,
            # Untouched since the prompt: no answer yet, and not nudged (a nudge touches it).
            ConversationSession.updated_at == ConversationSession.started_at,
        )
        .order_by(ConversationSession.updated_at)
        .limit(batch)
        .with_for_update(skip_locked=True)
    ).all()
    sent = 0
    for session in silent:
        if session.state.get("nudged"):
            continue
        contact = db.get(Contact, session.contact_id)
        identity = db.get(ChannelIdentity, session.identity_id) if session.identity_id else None
        patient = _patient_of(db, session)
        if contact is None or identity is None or identity.stopped_at is not None:
            continue
        if patient is not None:
            later, _ = timing.defer_for_quiet_hours(
                now, contact.timezone, quiet_hours_of(contact, patient)
            )
            if later > now:
                continue  # a later tick nudges once quiet hours end
        sessions.repeat(db, session, identity, services, now, nudge=True)
        session.state = {**session.state, "nudged": now.isoformat()}
        # Touched, so the next ticks skip it; expiry still counts from the last answer.
        session.updated_at = now
        sent += 1
    return sent


def _patient_of(db: Session, session: ConversationSession) -> Patient | None:
    # Before a parent says which child, the quiet hours of any of their children apply.
    if session.patient_id is not None:
        return db.get(Patient, session.patient_id)
    return db.scalar(
        select(Patient)
        .join(ContactPatient, ContactPatient.patient_id == Patient.id)
        .where(ContactPatient.contact_id == session.contact_id)
        .limit(1)
    )
