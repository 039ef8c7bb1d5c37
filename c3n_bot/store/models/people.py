"""Patients, the contacts who message for them, channel identities, consent and enrollment."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from c3n_bot.store.base import (
    Base,
    Channel,
    Condition,
    Purpose,
    Relationship,
    str_enum,
    uuid_pk,
)
from c3n_bot.store.models.org import Center


class Patient(Base):
    """A person followed by a center; the subject of every submission."""

    __tablename__ = "patients"
    __table_args__ = (
        UniqueConstraint("center_id", "external_id"),
        Index("ix_patients_center_family_name", "center_id", "family_name"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    center_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("centers.id"))
    # The network's patient identifier (FHIR Patient.identifier.value).
    external_id: Mapped[str] = mapped_column(String(64))
    given_name: Mapped[str] = mapped_column(String(100))
    family_name: Mapped[str] = mapped_column(String(100))
    birth_date: Mapped[date]
    condition: Mapped[Condition] = mapped_column(str_enum(Condition, "condition"))
    language: Mapped[str] = mapped_column(String(8))
    timezone: Mapped[str] = mapped_column(String(64))
    schedules_paused: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]

    center: Mapped[Center] = relationship(lazy="joined")
    links: Mapped[list[ContactPatient]] = relationship(back_populates="patient")


class Contact(Base):
    """A person who messages the bot: the patient, or a parent or guardian."""

    __tablename__ = "contacts"

    id: Mapped[uuid.UUID] = uuid_pk()
    display_name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(8))
    timezone: Mapped[str] = mapped_column(String(64))
    # Per-family overrides of the center's quiet hours and daily prompt cap.
    quiet_hours_start: Mapped[str | None] = mapped_column(String(5))
    quiet_hours_end: Mapped[str | None] = mapped_column(String(5))
    daily_prompt_cap: Mapped[int | None]
    created_at: Mapped[datetime]

    identities: Mapped[list[ChannelIdentity]] = relationship(back_populates="contact")
    links: Mapped[list[ContactPatient]] = relationship(back_populates="contact")


class ChannelIdentity(Base):
    """A contact's address on one channel (Telegram chat id, E.164 phone) and its STOP state."""

    __tablename__ = "channel_identities"
    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, "channel"))
    address: Mapped[str] = mapped_column(String(64))
    # Channel-level opt-out (STOP, or the bot blocked); overrides every consent.
    stopped_at: Mapped[datetime | None]
    created_at: Mapped[datetime]

    contact: Mapped[Contact] = relationship(back_populates="identities")


class ContactPatient(Base):
    """A contact reports for a patient: themself, or a child as parent or guardian."""

    __tablename__ = "contact_patients"

    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    patient_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    relation: Mapped[Relationship] = mapped_column(
        "relationship", str_enum(Relationship, "relationship")
    )

    contact: Mapped[Contact] = relationship(back_populates="links")
    patient: Mapped[Patient] = relationship(back_populates="links")


class Consent(Base):
    """A contact's current answer for one purpose; history is in the audit trail."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("contact_id", "purpose"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    purpose: Mapped[Purpose] = mapped_column(str_enum(Purpose, "purpose"))
    granted: Mapped[bool]
    source: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime]


class Enrollment(Base):
    """An invitation for a contact: a Telegram deep-link token and an SMS join code."""

    __tablename__ = "enrollments"

    id: Mapped[uuid.UUID] = uuid_pk()
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), index=True)
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id"), index=True)
    # Telegram deep-link payload: at most 64 characters of [A-Za-z0-9_-].
    token: Mapped[str] = mapped_column(String(64), unique=True)
    sms_code: Mapped[str] = mapped_column(String(16), unique=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by_identity_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("channel_identities.id")
    )
