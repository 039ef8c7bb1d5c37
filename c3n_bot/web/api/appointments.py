"""Appointments over the JSON API: book, list, move, cancel, and import a CSV export.

Every route is center-scoped by the API key's owner: a patient or appointment outside the
caller's centers is a 404. Times: ``starts_at`` with a UTC offset is that instant; without
one it is the patient's local wall time. Responses give instants in UTC and in local time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, File, Request, UploadFile, status
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.orm import Session

from c3n_bot.service import audit, timing, visit_import, visits
from c3n_bot.service.errors import NotFound
from c3n_bot.store.models import Appointment, DueWork, Patient
from c3n_bot.store.models.scheduling import AppointmentStatus
from c3n_bot.web.deps import ApiDep, DbDep, NowDep, Principal

router = APIRouter(tags=["appointments"])
_CSV_COLUMNS = "CSV: patient_external_id,center,starts_at_local,location,external_id,status"


class AppointmentIn(BaseModel):
    """A visit to book."""

    model_config = ConfigDict(extra="forbid")

    starts_at: datetime = Field(
        description="ISO 8601; with an offset it is that instant, without one the patient's "
        "local time"
    )
    location: str | None = Field(default=None, min_length=1, max_length=200)
    external_id: str | None = Field(default=None, min_length=1, max_length=64)


class AppointmentPatch(BaseModel):
    """Move a visit (``starts_at``) or cancel it (``status: cancelled``), one at a time."""

    model_config = ConfigDict(extra="forbid")

    starts_at: datetime | None = None
    status: Literal["cancelled"] | None = None

    @model_validator(mode="after")
    def _one_change(self) -> AppointmentPatch:
        if (self.starts_at is None) == (self.status is None):
            raise ValueError("give either starts_at (to move) or status: cancelled")
        return self


class ReminderOut(BaseModel):
    """A reminder or pre-visit prompt still to be sent."""

    id: uuid.UUID
    kind: str
    flow_id: str
    due_at: datetime
    due_at_local: datetime
    status: str
    reason: str | None


class AppointmentOut(BaseModel):
    """A visit with its pending reminders and prompts."""

    id: uuid.UUID
    patient_id: uuid.UUID
    starts_at: datetime
    starts_at_local: datetime
    timezone: str
    location: str | None
    external_id: str | None
    status: AppointmentStatus
    created_at: datetime
    updated_at: datetime
    reminders: list[ReminderOut]

    @classmethod
    def of(cls, appointment: Appointment, tz: str, work: Sequence[DueWork]) -> AppointmentOut:
        """Build from a row, its patient's timezone and its open due work."""
        zone = timing.load_zone(tz)
        reminders = [
            ReminderOut(
                id=row.id,
                kind=row.kind,
                flow_id=row.flow_id,
                due_at=row.due_at,
                due_at_local=row.due_at.astimezone(zone),
                status=row.status.value,
                reason=row.reason,
            )
            for row in work
        ]
        return cls(
            id=appointment.id,
            patient_id=appointment.patient_id,
            starts_at=appointment.starts_at,
            starts_at_local=appointment.starts_at.astimezone(zone),
            timezone=tz,
            location=appointment.location,
            external_id=appointment.external_id,
            status=appointment.status,
            created_at=appointment.created_at,
            updated_at=appointment.updated_at,
            reminders=reminders,
        )


class ImportRowOut(BaseModel):
    """What became of one CSV row (``row`` is the sheet's row; the header is row 1)."""

    row: int
    status: visit_import.RowStatus
    appointment_id: uuid.UUID | None = None
    error: str | None = None


@router.post("/patients/{patient_id}/appointments", status_code=status.HTTP_201_CREATED)
def create_appointment(
    request: Request,
    patient_id: uuid.UUID,
    data: AppointmentIn,
    db: DbDep,
    now: NowDep,
    principal: ApiDep,
) -> AppointmentOut:
    """Book a visit; its reminders (7 and 1 days before, 18:00 local) are planned at once."""
    patient = _patient(db, patient_id, principal)
    appointment = visits.create_appointment(
        db,
        patient_id=patient.id,
        starts_at=visits.to_instant(data.starts_at, patient.timezone),
        location=data.location,
        external_id=data.external_id,
        allowed_centers=principal.centers,
        now=now,
    )
    _audit(db, request, principal, "appointment.create", appointment, patient, now)
    db.commit()
    return _out(db, appointment, patient)


@router.get("/patients/{patient_id}/appointments")
def list_appointments(
    request: Request, patient_id: uuid.UUID, db: DbDep, now: NowDep, principal: ApiDep
) -> list[AppointmentOut]:
    """The patient's visits, soonest first, each with its pending reminders."""
    patient = _patient(db, patient_id, principal)
    rows = visits.list_appointments(db, patient_id=patient.id, allowed_centers=principal.centers)
    work = visits.open_work(db, [row.id for row in rows])
    audit.record(
        db,
        actor=principal.actor(request),
        action="appointment.list",
        patient_id=patient.id,
        center_id=patient.center_id,
        now=now,
    )
    db.commit()
    return [AppointmentOut.of(row, patient.timezone, work[row.id]) for row in rows]


@router.get("/appointments/{appointment_id}")
def get_appointment(
    request: Request, appointment_id: uuid.UUID, db: DbDep, now: NowDep, principal: ApiDep
) -> AppointmentOut:
    """One visit with its pending reminders."""
    appointment = visits.get_appointment(
        db, appointment_id=appointment_id, allowed_centers=principal.centers
    )
    patient = _patient(db, appointment.patient_id, principal)
    _audit(db, request, principal, "appointment.view", appointment, patient, now)
    db.commit()
    return _out(db, appointment, patient)


@router.patch("/appointments/{appointment_id}")
def change_appointment(
    request: Request,
    appointment_id: uuid.UUID,
    data: AppointmentPatch,
    db: DbDep,
    now: NowDep,
    principal: ApiDep,
) -> AppointmentOut:
    """Move a visit (its reminders follow) or cancel it (its reminders are cancelled)."""
    appointment = visits.get_appointment(
        db, appointment_id=appointment_id, allowed_centers=principal.centers
    )
    patient = _patient(db, appointment.patient_id, principal)
    if data.starts_at is not None:
        changed = visits.move_appointment(
            db,
            appointment_id=appointment.id,
            starts_at=visits.to_instant(data.starts_at, patient.timezone),
            allowed_centers=principal.centers,
            now=now,
        )
        action = "appointment.move"
    else:
        changed = visits.cancel_appointment(
            db, appointment_id=appointment.id, allowed_centers=principal.centers, now=now
        )
        action = "appointment.cancel"
    if changed:
        _audit(db, request, principal, action, appointment, patient, now)
    db.commit()
    return _out(db, appointment, patient)


@router.post("/appointments/import")
def import_appointments(
    request: Request,
    file: Annotated[UploadFile, File(description=_CSV_COLUMNS)],
    db: DbDep,
    now: NowDep,
    principal: ApiDep,
) -> list[ImportRowOut]:
    """Create, move or cancel visits from a CSV file; one result per row, never all-or-nothing.

    Columns: patient_external_id, center (slug), starts_at_local (``2026-03-09 09:00`` in the
    patient's timezone), location, external_id, status (booked | cancelled). A file that is not
    UTF-8 CSV with the required columns is a 422 naming ``file``.
    """
    data = file.file.read(visit_import.MAX_BYTES + 1)
    results = visit_import.import_csv(
        db, data=data, allowed_centers=principal.centers, now=now, actor=principal.actor(request)
    )
    db.commit()
    return [
        ImportRowOut(row=r.row, status=r.status, appointment_id=r.appointment_id, error=r.error)
        for r in results
    ]


def _patient(db: Session, patient_id: uuid.UUID, principal: Principal) -> Patient:
    patient = db.get(Patient, patient_id)
    if patient is None or patient.center_id not in principal.centers:
        raise NotFound("patient")
    return patient


def _out(db: Session, appointment: Appointment, patient: Patient) -> AppointmentOut:
    work = visits.open_work(db, [appointment.id])[appointment.id]
    return AppointmentOut.of(appointment, patient.timezone, work)


def _audit(
    db: Session,
    request: Request,
    principal: Principal,
    action: str,
    appointment: Appointment,
    patient: Patient,
    now: datetime,
) -> None:
    principal.audit(
        db, request, action=action, patient=patient, now=now, subject=str(appointment.id)
    )
