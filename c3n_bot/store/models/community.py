"""Co-design activities, broadcasts and RSVPs."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from c3n_bot.store.base import Base, str_enum, uuid_pk
from c3n_bot.store.types import Json


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


class Activity(Base):
    """A co-design session families are invited to."""

    __tablename__ = "activities"

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
    audience: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime]


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


class Broadcast(Base):
    """A templated message to a segment, sent now or at a scheduled time."""

    __tablename__ = "broadcasts"

    id: Mapped[uuid.UUID] = uuid_pk()
    network_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("networks.id"), index=True)
    activity_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("activities.id"))
    name: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(32))
    # Jinja2 template source per language code.
    templates: Mapped[dict[str, str]] = mapped_column(Json)
    segment: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    status: Mapped[BroadcastStatus] = mapped_column(str_enum(BroadcastStatus, "broadcast_status"))
    scheduled_at: Mapped[datetime | None]
    counts: Mapped[dict[str, int]] = mapped_column(Json, default=dict)
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime]
