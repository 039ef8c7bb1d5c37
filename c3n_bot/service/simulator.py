"""Read models for the web simulator: contacts to speak as, their chat, session and results."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from c3n_bot.service.errors import NotFound
from c3n_bot.store.base import Channel
from c3n_bot.store.models import (
    Alert,
    ChannelIdentity,
    Contact,
    ContactPatient,
    ConversationSession,
    InboundMessage,
    OutboxMessage,
    Patient,
    Submission,
)
from c3n_bot.store.models.conversations import SessionStatus


@dataclass(frozen=True)
class ChatLine:
    """One message in the simulator's transcript."""

    at: datetime
    inbound: bool
    text: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Panel:
    """The contact's active session and the latest results for their patients."""

    session: ConversationSession | None
    submissions: list[Submission]
    alerts: list[Alert]


def contacts(db: Session, *, centers: set[uuid.UUID]) -> list[Contact]:
    """Contacts reporting for patients of these centers, with a web identity to speak as."""
    query = (
        select(Contact)
        .join(ContactPatient)
        .join(Patient)
        .join(ChannelIdentity, ChannelIdentity.contact_id == Contact.id)
        .where(Patient.center_id.in_(centers), ChannelIdentity.channel == Channel.WEB)
        .options(selectinload(Contact.links).selectinload(ContactPatient.patient))
        .order_by(Contact.display_name)
        .distinct()
    )
    return list(db.scalars(query))


def web_identity(db: Session, *, contact_id: uuid.UUID, centers: set[uuid.UUID]) -> ChannelIdentity:
    """The contact's web identity, when the contact belongs to one of the centers."""
    identity = db.scalar(
        select(ChannelIdentity)
        .join(ContactPatient, ContactPatient.contact_id == ChannelIdentity.contact_id)
        .join(Patient)
        .where(
            ChannelIdentity.contact_id == contact_id,
            ChannelIdentity.channel == Channel.WEB,
            Patient.center_id.in_(centers),
        )
        .limit(1)
    )
    if identity is None:
        raise NotFound("contact")
    return identity


def transcript(db: Session, identity: ChannelIdentity, *, limit: int = 60) -> list[ChatLine]:
    """The latest messages exchanged on this identity, oldest first."""
    inbound = db.execute(
        select(InboundMessage.received_at, InboundMessage.id, InboundMessage.body)
        .where(InboundMessage.identity_id == identity.id)
        .order_by(InboundMessage.id.desc())
        .limit(limit)
    ).all()
    outbound = db.execute(
        select(
            OutboxMessage.created_at, OutboxMessage.id, OutboxMessage.body, OutboxMessage.payload
        )
        .where(OutboxMessage.identity_id == identity.id)
        .order_by(OutboxMessage.id.desc())
        .limit(limit)
    ).all()
    lines = [(at, 0, row_id, ChatLine(at, True, body)) for at, row_id, body in inbound]
    lines += [
        (at, 1, row_id, ChatLine(at, False, body, payload))
        for at, row_id, body, payload in outbound
    ]
    lines.sort(key=lambda entry: entry[:3])
    return [entry[3] for entry in lines[-limit:]]


def panel(db: Session, contact: Contact) -> Panel:
    """The active session and the last results of the contact's patients."""
    session = db.scalar(
        select(ConversationSession).where(
            ConversationSession.contact_id == contact.id,
            ConversationSession.status == SessionStatus.ACTIVE,
        )
    )
    patient_ids = [link.patient_id for link in contact.links]
    submissions = list(
        db.scalars(
            select(Submission)
            .where(Submission.patient_id.in_(patient_ids))
            .order_by(Submission.authored_at.desc())
            .limit(5)
        )
    )
    alerts = list(
        db.scalars(
            select(Alert)
            .where(Alert.patient_id.in_(patient_ids))
            .order_by(Alert.raised_at.desc())
            .limit(5)
        )
    )
    return Panel(session=session, submissions=submissions, alerts=alerts)
