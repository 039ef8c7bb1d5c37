"""Conversation sessions, submissions (the registry record), alerts, and the message log."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from c3n_bot.store.base import Base, Channel, str_enum, uuid_pk
from c3n_bot.store.types import BigId, Json


class SessionStatus(enum.StrEnum):
    """Where a conversation stands."""

    ACTIVE = "active"
    COMPLETED = "completed"
    EXPIRED = "expired"
    STOPPED = "stopped"


class SubmissionStatus(enum.StrEnum):
    """A submission is completed, or closed early as partial (expired) or stopped."""

    COMPLETED = "completed"
    PARTIAL = "partial"
    STOPPED = "stopped"


class Severity(enum.StrEnum):
    """Urgent alerts (safety) page a human fast; review alerts wait for the inbox."""

    URGENT = "urgent"
    REVIEW = "review"


class OutboxStatus(enum.StrEnum):
    """Life of an outbound message, ending in a provider delivery state."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    QUEUED = "queued"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ConversationSession(Base):
    """A contact's run through a flow; its state is plain JSON, versioned with the flow."""

    __tablename__ = "sessions"
    __table_args__ = (
        # One active session per contact, enforced by the database.
        Index(
            "uq_sessions_active_contact",
            "contact_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_sessions_status_expires_at", "status", "expires_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id"))
    patient_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("patients.id"), index=True)
    identity_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("channel_identities.id"))
    flow_id: Mapped[str] = mapped_column(String(64))
    flow_version: Mapped[str] = mapped_column(String(32))
    state: Mapped[dict[str, Any]] = mapped_column(Json)
    status: Mapped[SessionStatus] = mapped_column(str_enum(SessionStatus, "session_status"))
    trigger: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class Submission(Base):
    """The registry record of one report; immutable once completed, corrected by a new version."""

    __tablename__ = "submissions"
    __table_args__ = (
        Index("ix_submissions_patient_flow_authored", "patient_id", "flow_id", "authored_at"),
        Index("ix_submissions_authored_at", "authored_at"),
        # The inbox: a center's newest submissions in page order (also serves center_id alone).
        Index("ix_submissions_center_authored", "center_id", "authored_at", "id"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"))
    center_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("centers.id"))
    reporter_contact_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("contacts.id"))
    session_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sessions.id"), unique=True)
    flow_id: Mapped[str] = mapped_column(String(64))
    flow_version: Mapped[str] = mapped_column(String(32))
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, "channel"))
    status: Mapped[SubmissionStatus] = mapped_column(
        str_enum(SubmissionStatus, "submission_status")
    )
    answers: Mapped[dict[str, Any]] = mapped_column(Json)
    scores: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    bands: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    started_at: Mapped[datetime]
    authored_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(default=1)
    replaces_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("submissions.id"))


class Alert(Base):
    """A rule that fired on a submission, until a clinician acknowledges it."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_inbox", "center_id", "acknowledged_at", "severity", "due_by"),
        # The escalation task: open, not yet escalated alerts by due time (a small set).
        Index(
            "ix_alerts_escalation_due",
            "severity",
            "due_by",
            sqlite_where=text("acknowledged_at IS NULL AND escalated_at IS NULL"),
            postgresql_where=text("acknowledged_at IS NULL AND escalated_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    # A safety alert is raised mid-flow, before the submission exists; it is linked at the end.
    submission_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("submissions.id"), index=True
    )
    session_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sessions.id"), index=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), index=True)
    center_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("centers.id"))
    rule: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    severity: Mapped[Severity] = mapped_column(str_enum(Severity, "severity"))
    raised_at: Mapped[datetime]
    due_by: Mapped[datetime]
    acknowledged_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    acknowledged_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)
    escalated_at: Mapped[datetime | None]


class InboundMessage(Base):
    """Every message received, once: (channel, provider id) is unique, so retries are harmless."""

    __tablename__ = "inbound_messages"
    __table_args__ = (UniqueConstraint("channel", "provider_message_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, "channel"))
    provider_message_id: Mapped[str] = mapped_column(String(64))
    identity_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("channel_identities.id"), index=True
    )
    session_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sessions.id"))
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime]
    handled_at: Mapped[datetime | None]


PENDING = "status = 'pending'"
OPEN = "status IN ('pending', 'sending')"


class OutboxMessage(Base):
    """An outbound message, written in the transaction that caused it; the dispatcher sends it."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_identity_created", "identity_id", "created_at"),
        Index("ix_outbox_address_kind", "channel", "address", "kind", "created_at"),
        # The dispatcher's claim walks a channel's pending rows in send order (ix_outbox_claim,
        # below the class) and keeps a row only if no earlier row to its address is still open.
        Index(
            "ix_outbox_open_address",
            "channel",
            "address",
            "id",
            sqlite_where=text(OPEN),
            postgresql_where=text(OPEN),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, "channel"))
    # The chat id or phone number; an unenrolled sender has an address but no identity yet.
    address: Mapped[str] = mapped_column(String(64))
    identity_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("channel_identities.id"))
    contact_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    session_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sessions.id"))
    kind: Mapped[str] = mapped_column(String(32))
    priority: Mapped[int] = mapped_column(default=0)
    body: Mapped[str] = mapped_column(Text)
    # Channel-neutral extras: choice buttons, the callback to answer, the message to edit.
    payload: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    # Idempotency for due work: the same reminder slot can never be enqueued twice.
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    status: Mapped[OutboxStatus] = mapped_column(str_enum(OutboxStatus, "outbox_status"))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    provider_message_id: Mapped[str | None] = mapped_column(String(64), index=True)
    last_error: Mapped[str | None] = mapped_column(String(200))


Index(
    "ix_outbox_claim",
    OutboxMessage.channel,
    OutboxMessage.priority.desc(),
    OutboxMessage.id,
    sqlite_where=text(PENDING),
    postgresql_where=text(PENDING),
)


class DeliveryAttempt(Base):
    """One try at sending an outbox row, with the provider's answer."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    outbox_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("outbox_messages.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(32))
    status_code: Mapped[int | None]
    error_code: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(String(200))


class ChannelCursor(Base):
    """A channel's persisted position, e.g. the Telegram getUpdates offset."""

    __tablename__ = "channel_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigId)
    updated_at: Mapped[datetime]
