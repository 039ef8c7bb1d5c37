"""Clinic visits: book, move and cancel appointments; the family's answer to a reminder.

A booked appointment plans its due work at once (see :mod:`c3n_bot.service.visit_plan`):
reminders 7 and 1 days before at 18:00 local, and the center's pre-visit prompt (IBD: PUCAI).
Nothing is sent from here; the clock's ``due.run_due`` starts the flows when they are due.
Moving a visit cancels its open work ("visit moved") and plans it anew; cancelling cancels it
("visit cancelled"). Completed and cancelled visits cannot be moved.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, time

from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.service import timing, visit_plan
from c3n_bot.service.completion import DUE_WITHIN
from c3n_bot.service.errors import Conflict, InvalidInput, NotFound
from c3n_bot.service.visit_plan import open_work, visit_time_text
from c3n_bot.store.models import Alert, Appointment, Patient
from c3n_bot.store.models.conversations import Severity
from c3n_bot.store.models.scheduling import AppointmentStatus

__all__ = [
    "CLOSED",
    "DEFAULT_OFFSETS",
    "cancel_appointment",
    "confirm",
    "create_appointment",
    "get_appointment",
    "list_appointments",
    "move_appointment",
    "open_work",
    "request_reschedule",
    "to_instant",
    "visit_time_text",
]

DEFAULT_OFFSETS = (7, 1)
CLOSED = (AppointmentStatus.CANCELLED, AppointmentStatus.COMPLETED)
RESCHEDULE_RULE = "visit_reschedule"


def to_instant(value: datetime, tz: str) -> datetime:
    """An aware instant as UTC; a naive one is a wall time in ``tz`` (by the wall-time rule)."""
    if value.tzinfo is None or value.utcoffset() is None:
        return timing.local_to_utc(value, timing.load_zone(tz))
    return timing.as_utc(value)


def create_appointment(
    db: Session,
    *,
    patient_id: uuid.UUID,
    starts_at: datetime,
    location: str | None = None,
    external_id: str | None = None,
    allowed_centers: set[uuid.UUID],
    now: datetime,
    offsets_days: Sequence[int] = DEFAULT_OFFSETS,
    at_local: time = timing.REMINDER_AT,
) -> Appointment:
    """Book a visit and plan its reminders and pre-visit prompt, in the caller's transaction."""
    patient = db.get(Patient, patient_id)
    if patient is None or patient.center_id not in allowed_centers:
        raise NotFound("patient")
    start = _future_start(starts_at, now)
    if external_id is not None:
        taken = select(Appointment.id).where(Appointment.external_id == external_id)
        if db.scalar(taken) is not None:
            raise Conflict("an appointment with this external_id exists")
    appointment = Appointment(
        patient_id=patient.id,
        starts_at=start,
        location=location,
        external_id=external_id,
        status=AppointmentStatus.BOOKED,
        created_at=now,
        updated_at=now,
    )
    db.add(appointment)
    db.flush()
    visit_plan.plan(db, appointment, patient, now, offsets_days, at_local)
    return appointment


def move_appointment(
    db: Session,
    *,
    appointment_id: uuid.UUID,
    starts_at: datetime,
    allowed_centers: set[uuid.UUID],
    now: datetime,
    offsets_days: Sequence[int] = DEFAULT_OFFSETS,
    at_local: time = timing.REMINDER_AT,
) -> bool:
    """Move a visit: its open work is cancelled and planned anew; False when nothing changed."""
    appointment = get_appointment(
        db, appointment_id=appointment_id, allowed_centers=allowed_centers
    )
    if appointment.status in CLOSED:
        raise Conflict(f"the appointment is {appointment.status.value}: it cannot be moved")
    if _aware(starts_at) == timing.as_utc(appointment.starts_at):
        return False
    start = _future_start(starts_at, now)
    visit_plan.cancel_open(db, appointment.id, "visit moved", now)
    appointment.starts_at = start
    appointment.status = AppointmentStatus.BOOKED
    appointment.updated_at = now
    db.flush()
    patient = db.get(Patient, appointment.patient_id)
    if patient is not None:
        visit_plan.plan(db, appointment, patient, now, offsets_days, at_local)
    return True


def cancel_appointment(
    db: Session, *, appointment_id: uuid.UUID, allowed_centers: set[uuid.UUID], now: datetime
) -> bool:
    """Cancel a visit and its open reminders and prompts; False when it was already cancelled."""
    appointment = get_appointment(
        db, appointment_id=appointment_id, allowed_centers=allowed_centers
    )
    if appointment.status == AppointmentStatus.CANCELLED:
        return False
    if appointment.status == AppointmentStatus.COMPLETED:
        raise Conflict("the appointment is completed: it cannot be cancelled")
    visit_plan.cancel_open(db, appointment.id, "visit cancelled", now)
    appointment.status = AppointmentStatus.CANCELLED
    appointment.updated_at = now
    db.flush()
    return True


def get_appointment(
    db: Session, *, appointment_id: uuid.UUID, allowed_centers: set[uuid.UUID]
) -> Appointment:
    """One appointment; NotFound when absent or its patient is outside the caller's centers."""
    appointment = db.get(Appointment, appointment_id)
    if appointment is not None:
        patient = db.get(Patient, appointment.patient_id)
        if patient is not None and patient.center_id in allowed_centers:
            return appointment
    raise NotFound("appointment")


def list_appointments(
    db: Session, *, patient_id: uuid.UUID, allowed_centers: set[uuid.UUID]
) -> Sequence[Appointment]:
    """A patient's appointments, soonest first; NotFound outside the caller's centers."""
    patient = db.get(Patient, patient_id)
    if patient is None or patient.center_id not in allowed_centers:
        raise NotFound("patient")
    query = select(Appointment).where(Appointment.patient_id == patient.id)
    return db.scalars(query.order_by(Appointment.starts_at, Appointment.id)).all()


def confirm(db: Session, *, appointment: Appointment, now: datetime) -> None:
    """The family answered a reminder: they will come (a closed visit stays as it is)."""
    if appointment.status not in CLOSED:
        appointment.status = AppointmentStatus.CONFIRMED
        appointment.updated_at = now


def request_reschedule(
    db: Session, *, appointment: Appointment, session_id: uuid.UUID | None, now: datetime
) -> Alert | None:
    """The family asked to reschedule: mark the visit and give the care team a review task.

    Its reminders stay until staff move or cancel the visit. A second answer while the first
    task is still open adds no second task.
    """
    patient = db.get(Patient, appointment.patient_id)
    if appointment.status in CLOSED or patient is None:
        return None
    appointment.status = AppointmentStatus.RESCHEDULE_REQUESTED
    appointment.updated_at = now
    day = appointment.starts_at.astimezone(timing.load_zone(patient.timezone)).date()
    title = f"Family asked to reschedule the visit on {day.isoformat()}"
    already = select(Alert.id).where(
        Alert.patient_id == patient.id,
        Alert.rule == RESCHEDULE_RULE,
        Alert.title == title,
        Alert.acknowledged_at.is_(None),
    )
    if db.scalar(already.limit(1)) is not None:
        return None
    alert = Alert(
        session_id=session_id,
        patient_id=patient.id,
        center_id=patient.center_id,
        rule=RESCHEDULE_RULE,
        severity=Severity.REVIEW,
        title=title,
        raised_at=now,
        due_by=now + DUE_WITHIN[Severity.REVIEW],
    )
    db.add(alert)
    return alert


def _aware(starts_at: datetime) -> datetime:
    if starts_at.tzinfo is None or starts_at.utcoffset() is None:
        raise InvalidInput("starts_at", "needs a UTC offset")
    return timing.as_utc(starts_at)


def _future_start(starts_at: datetime, now: datetime) -> datetime:
    start = _aware(starts_at)
    if start <= now:
        raise InvalidInput("starts_at", "is in the past")
    return start
