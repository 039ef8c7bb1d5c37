"""What the care team does from a patient's chart: start a flow, pause or resume schedules, and
book, move or cancel a visit. Each is a CSRF-checked form post, audited, then a redirect back
to the chart with a notice; a refused change (a past time, a closed visit, no reachable
channel) is a notice too, never an error page.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from c3n_bot.engine.messages import N_
from c3n_bot.service import patient_flows, patients, visits
from c3n_bot.service.errors import Conflict, InvalidInput
from c3n_bot.store.models import Appointment, Patient
from c3n_bot.web.access import ClinicalFormDep
from c3n_bot.web.deps import DbDep, NowDep, Principal, ServicesDep
from c3n_bot.web.templating import flash

router = APIRouter()
LocalTime = Annotated[str, Form(max_length=32)]
REFUSED = N_("Not done:")


def _back(patient: Patient, anchor: str) -> Response:
    return RedirectResponse(f"/patients/{patient.id}#{anchor}", status.HTTP_303_SEE_OTHER)


def _local(value: str, patient: Patient) -> datetime:
    """A datetime-local field (the patient's wall time) as a UTC instant."""
    try:
        return visits.to_instant(datetime.fromisoformat(value), patient.timezone)
    except ValueError:
        raise InvalidInput("starts_at", "is not a date and time") from None


@router.post("/patients/{patient_id}/flows")
def start_flow(
    request: Request,
    patient_id: uuid.UUID,
    db: DbDep,
    now: NowDep,
    services: ServicesDep,
    principal: ClinicalFormDep,
    flow: Annotated[str, Form(max_length=64)],
    contact: Annotated[str, Form(max_length=36)] = "",
) -> Response:
    """Start a flow now for one of the patient's contacts (queued if they are in another)."""
    patient = patients.get_patient(db, patient_id=patient_id, allowed_centers=principal.centers)
    try:
        contact_id = uuid.UUID(contact) if contact else None
        _, result = patient_flows.start_for_patient(
            db, patient=patient, flow_id=flow, services=services, now=now, contact_id=contact_id
        )
    except ValueError:
        return _refused(request, db, patient, InvalidInput("contact", "is not an id"), "actions")
    except InvalidInput as exc:
        return _refused(request, db, patient, exc, "actions")
    principal.audit(
        db, request, action="session.start", patient=patient, now=now, detail={"flow": flow}
    )
    db.commit()
    queued = result.status == "queued"
    flash(
        request, "ok", N_("Flow queued after the current one.") if queued else N_("Flow started.")
    )
    return _back(patient, "actions")


@router.post("/patients/{patient_id}/schedules/{change}")
def pause_or_resume(
    request: Request,
    patient_id: uuid.UUID,
    change: Literal["pause", "resume"],
    db: DbDep,
    now: NowDep,
    principal: ClinicalFormDep,
) -> Response:
    """Pause every schedule of the patient (visit reminders still go out), or resume them."""
    patient = patients.get_patient(db, patient_id=patient_id, allowed_centers=principal.centers)
    patient.schedules_paused = change == "pause"
    principal.audit(db, request, action=f"schedules.{change}", patient=patient, now=now)
    db.commit()
    flash(request, "ok", N_("Schedules paused.") if change == "pause" else N_("Schedules resumed."))
    return _back(patient, "schedules")


@router.post("/patients/{patient_id}/appointments")
def book(
    request: Request,
    patient_id: uuid.UUID,
    db: DbDep,
    now: NowDep,
    principal: ClinicalFormDep,
    starts_at: LocalTime,
    location: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Book a visit at the patient's local time; its reminders are planned at once."""
    patient = patients.get_patient(db, patient_id=patient_id, allowed_centers=principal.centers)
    try:
        appointment = visits.create_appointment(
            db,
            patient_id=patient.id,
            starts_at=_local(starts_at, patient),
            location=location.strip() or None,
            allowed_centers=principal.centers,
            now=now,
        )
    except (InvalidInput, Conflict) as exc:
        return _refused(request, db, patient, exc)
    principal.audit(
        db,
        request,
        action="appointment.create",
        patient=patient,
        now=now,
        subject=str(appointment.id),
    )
    db.commit()
    flash(request, "ok", N_("Visit booked."))
    return _back(patient, "visits")


@router.post("/appointments/{appointment_id}/move")
def move(
    request: Request,
    appointment_id: uuid.UUID,
    db: DbDep,
    now: NowDep,
    principal: ClinicalFormDep,
    starts_at: LocalTime,
) -> Response:
    """Move a visit; its open reminders are cancelled and planned for the new time."""
    appointment, patient = _visit(db, appointment_id, principal)
    try:
        changed = visits.move_appointment(
            db,
            appointment_id=appointment.id,
            starts_at=_local(starts_at, patient),
            allowed_centers=principal.centers,
            now=now,
        )
    except (InvalidInput, Conflict) as exc:
        return _refused(request, db, patient, exc)
    _commit_visit_change(db, request, principal, appointment, patient, now, "move", changed)
    flash(request, "ok", N_("Visit moved.") if changed else N_("The visit was already then."))
    return _back(patient, "visits")


@router.post("/appointments/{appointment_id}/cancel")
def cancel(
    request: Request, appointment_id: uuid.UUID, db: DbDep, now: NowDep, principal: ClinicalFormDep
) -> Response:
    """Cancel a visit and its open reminders and pre-visit prompts."""
    appointment, patient = _visit(db, appointment_id, principal)
    try:
        changed = visits.cancel_appointment(
            db, appointment_id=appointment.id, allowed_centers=principal.centers, now=now
        )
    except Conflict as exc:
        return _refused(request, db, patient, exc)
    _commit_visit_change(db, request, principal, appointment, patient, now, "cancel", changed)
    flash(request, "ok", N_("Visit cancelled."))
    return _back(patient, "visits")


def _visit(
    db: Session, appointment_id: uuid.UUID, principal: Principal
) -> tuple[Appointment, Patient]:
    """A visit of the user's centers and its patient (404 otherwise)."""
    appointment = visits.get_appointment(
        db, appointment_id=appointment_id, allowed_centers=principal.centers
    )
    patient = patients.get_patient(
        db, patient_id=appointment.patient_id, allowed_centers=principal.centers
    )
    return appointment, patient


def _commit_visit_change(
    db: Session,
    request: Request,
    principal: Principal,
    appointment: Appointment,
    patient: Patient,
    now: datetime,
    change: str,
    changed: bool,
) -> None:
    """Commit a visit's move or cancellation, audited when it changed anything."""
    if changed:
        principal.audit(
            db,
            request,
            action=f"appointment.{change}",
            patient=patient,
            now=now,
            subject=str(appointment.id),
        )
    db.commit()


def _refused(
    request: Request, db: Session, patient: Patient, exc: Exception, anchor: str = "visits"
) -> Response:
    target = _back(patient, anchor)
    db.rollback()
    flash(request, "error", REFUSED, str(exc))
    return target
