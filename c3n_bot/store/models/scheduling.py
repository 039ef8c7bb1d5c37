"""Recurring schedules, appointments, and due work keyed so it can never be done twice."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from c3n_bot.store.base import Base, str_enum, uuid_pk
from c3n_bot.store.types import Json


class AppointmentStatus(enum.StrEnum):
    """Where a visit stands, including the family's answer to its reminder."""

    BOOKED = "booked"
    CONFIRMED = "confirmed"
    RESCHEDULE_REQUESTED = "reschedule_requested"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


class DueStatus(enum.StrEnum):
    """What became of one slot of due work."""

    PENDING = "pending"
    DEFERRED = "deferred"
    DONE = "done"
    MISSED = "missed"
    CANCELLED = "cancelled"


class ScheduleTemplate(Base):
    """A center's default schedule for a condition: recurring, or days before each visit."""

    __tablename__ = "schedule_templates"
    __table_args__ = (UniqueConstraint("center_id", "condition", "flow_id", "anchor"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    center_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("centers.id"))
    condition: Mapped[str] = mapped_column(String(16))
    flow_id: Mapped[str] = mapped_column(String(64))
    # "recurring" (rrule, local wall time) or "pre_visit" (days_before each appointment).
    anchor: Mapped[str] = mapped_column(String(16))
    rrule: Mapped[str | None] = mapped_column(String(500))
    days_before: Mapped[int | None]
    at_local: Mapped[str] = mapped_column(String(5), default="18:00")
    min_age: Mapped[int | None]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]


class Schedule(Base):
    """A flow on a recurrence (RFC 5545 RRULE) in the family's own timezone."""

    __tablename__ = "schedules"
    __table_args__ = (Index("ix_schedules_due", "active", "next_due_at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), index=True)
    template_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("schedule_templates.id"))
    # The first slot's local wall time (naive, in `timezone`), e.g. a Sunday 18:00.
    dtstart_local: Mapped[str] = mapped_column(String(19))
    min_age: Mapped[int | None]
    # The last slot already materialized; slots after it and up to now are due.
    last_slot_at: Mapped[datetime | None]
    # The reporting contact for proxies; None means whoever reports for the patient.
    contact_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("contacts.id"))
    flow_id: Mapped[str] = mapped_column(String(64))
    rrule: Mapped[str] = mapped_column(String(500))
    timezone: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime]
    active: Mapped[bool] = mapped_column(default=True)
    # The next slot, kept current so one indexed query finds all due schedules.
    next_due_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Appointment(Base):
    """A clinic visit; reminders and pre-visit prompts follow it when it moves."""

    __tablename__ = "appointments"
    __table_args__ = (Index("ix_appointments_patient_starts", "patient_id", "starts_at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"))
    starts_at: Mapped[datetime] = mapped_column(index=True)
    location: Mapped[str | None] = mapped_column(String(200))
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    status: Mapped[AppointmentStatus] = mapped_column(
        str_enum(AppointmentStatus, "appointment_status")
    )
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class DueWork(Base):
    """One slot of due work (prompt, reminder, nudge); its key makes it happen at most once."""

    __tablename__ = "due_work"
    __table_args__ = (Index("ix_due_work_status_due", "status", "due_at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    # e.g. "schedule:<id>:<slot UTC ISO>" or "appointment:<id>:<offset>".
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    priority: Mapped[int] = mapped_column(default=0)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), index=True)
    contact_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("contacts.id"))
    schedule_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("schedules.id"))
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("appointments.id"), index=True
    )
    flow_id: Mapped[str] = mapped_column(String(64))
    slot_at: Mapped[datetime]
    due_at: Mapped[datetime]
    status: Mapped[DueStatus] = mapped_column(str_enum(DueStatus, "due_status"))
    # Why it waits or did not go (quiet hours, daily cap, active session, missed, consent).
    reason: Mapped[str | None] = mapped_column(String(200))
    session_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sessions.id"))
    detail: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime]
    done_at: Mapped[datetime | None]
