"""The network, its centers, staff users, API keys and the audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from c3n_bot.store.base import Base, Channel, Role, str_enum, uuid_pk
from c3n_bot.store.types import BigId, Json


class Network(Base):
    """A collaborative chronic care network (e.g. ImproveCareNow)."""

    __tablename__ = "networks"

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    # The identifier system patients carry in FHIR (Patient.identifier.system).
    identifier_system: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime]


class Center(Base):
    """A care center of the network, with its own timezone and crisis resources."""

    __tablename__ = "centers"
    __table_args__ = (UniqueConstraint("network_id", "slug"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    network_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("networks.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(64))
    timezone: Mapped[str] = mapped_column(String(64))
    # Crisis resources per language code, sent at once on a safety trigger.
    crisis_resources: Mapped[dict[str, str]] = mapped_column(Json, default=dict)
    quiet_hours_start: Mapped[str] = mapped_column(String(5), default="21:00")
    quiet_hours_end: Mapped[str] = mapped_column(String(5), default="08:00")
    daily_prompt_cap: Mapped[int] = mapped_column(default=3)
    # Who is paged when an urgent alert is not acknowledged in time (a pager phone, a chat).
    on_call_channel: Mapped[Channel | None] = mapped_column(str_enum(Channel, "channel"))
    on_call_address: Mapped[str | None] = mapped_column(String(64))
    on_call_language: Mapped[str] = mapped_column(String(8), default="en", server_default="en")
    created_at: Mapped[datetime]

    network: Mapped[Network] = relationship()


class StaffUser(Base):
    """A clinician, organiser or admin who signs in to the dashboard."""

    __tablename__ = "staff_users"

    id: Mapped[uuid.UUID] = uuid_pk()
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(str_enum(Role, "role"))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]

    centers: Mapped[list[Center]] = relationship(secondary="staff_centers", lazy="selectin")


class StaffCenter(Base):
    """Which centers a staff user works for; every page is scoped by these."""

    __tablename__ = "staff_centers"

    staff_user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True
    )
    center_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("centers.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class ApiKey(Base):
    """A bearer key for /api/v1; it acts with its owner's role and centers."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(String(200))
    # The public prefix finds the row; only a hash of the secret part is kept.
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    staff_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_users.id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

    staff_user: Mapped[StaffUser] = relationship(lazy="joined")


class AuditEvent(Base):
    """Who did what to which record, when; also counts failed logins for rate limiting."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_patient_at", "patient_id", "at"),
        Index("ix_audit_events_action_subject_at", "action", "subject", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    # What the action was about when it is not a patient: a login email, a key prefix.
    subject: Mapped[str | None] = mapped_column(String(254))
    patient_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("patients.id"))
    center_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("centers.id"))
    ip: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    note: Mapped[str | None] = mapped_column(Text)
