"""Co-design activities, broadcasts, their recipients and RSVPs."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from c3n_bot.store.base import Base, str_enum, uuid_pk
from c3n_bot.store.types import BigId, Json


class RsvpResponse(enum.StrEnum):
    """A family's answer to an invitation."""

    YES = "yes"
    NO = "no"
    MAYBE = "maybe"


class BroadcastStatus(enum.StrEnum):
    """Life of a broadcast."""

    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    CANCELLED = "cancelled"


class BroadcastKind(enum.StrEnum):
    """A plain message, or an invitation that starts the RSVP flow for an activity."""

    MESSAGE = "message"
    INVITATION = "invitation"


class RecipientOutcome(enum.StrEnum):
    """What became of one member of a broadcast's segment when it was sent."""

    QUEUED = "queued"
    # Queued to leave at the end of the family's quiet hours.
    DEFERRED = "deferred"
    STOPPED = "stopped"
    NO_CONSENT = "no_consent"
    NO_CHANNEL = "no_channel"


class Activity(Base):
    """A co-design session families are invited to."""

    __tablename__ = "activities"
    __table_args__ = (Index("ix_activities_starts_at", "starts_at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    network_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("networks.id"), index=True)
    center_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("centers.id"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    starts_at: Mapped[datetime]
    timezone: Mapped[str] = mapped_column(String(64))
    place: Mapped[str | None] = mapped_column(String(300))
    video_url: Mapped[str | None] = mapped_column(String(500))
    capacity: Mapped[int | None]
    # The segment invited by default (see service.segments.Segment).
    audience: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime | None]


class Rsvp(Base):
    """A contact's answer to an activity; waitlisted when it was full."""

    __tablename__ = "rsvps"
    __table_args__ = (UniqueConstraint("activity_id", "contact_id"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    activity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("activities.id"))
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id"), index=True)
    response: Mapped[RsvpResponse] = mapped_column(str_enum(RsvpResponse, "rsvp_response"))
    waitlisted: Mapped[bool] = mapped_column(default=False)
    responded_at: Mapped[datetime]
    # When a place opened and the waitlisted contact got it.
    promoted_at: Mapped[datetime | None]


class Broadcast(Base):
    """A templated message to a segment, sent now or at a scheduled time."""

    __tablename__ = "broadcasts"
    __table_args__ = (Index("ix_broadcasts_status_scheduled", "status", "scheduled_at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    network_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("networks.id"), index=True)
    activity_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("activities.id"))
    kind: Mapped[BroadcastKind] = mapped_column(
        str_enum(BroadcastKind, "broadcast_kind"), server_default=BroadcastKind.MESSAGE.value
    )
    name: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(32))
    # Jinja2 template source per language code.
    templates: Mapped[dict[str, str]] = mapped_column(Json)
    segment: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    status: Mapped[BroadcastStatus] = mapped_column(str_enum(BroadcastStatus, "broadcast_status"))
    scheduled_at: Mapped[datetime | None]
    # Recipients by outcome, kept current while the broadcast is being sent.
    counts: Mapped[dict[str, int]] = mapped_column(Json, default=dict)
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]


class BroadcastRecipient(Base):
    """One member of a broadcast's segment: queued (with its outbox row or due work) or why not.

    The key makes a send resumable and idempotent: a contact is handled once per broadcast.
    """

    __tablename__ = "broadcast_recipients"

    broadcast_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    outcome: Mapped[RecipientOutcome] = mapped_column(
        str_enum(RecipientOutcome, "recipient_outcome")
    )
    # A message broadcast's outbox row; an invitation's due work (which starts the flow).
    outbox_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("outbox_messages.id"))
    due_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("due_work.id"))
