"""A patient's schedules over the JSON API: list, add, pause and resume, and the preview."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from c3n_bot.service import patients, preview, schedules, timing
from c3n_bot.service.errors import InvalidInput, NotFound
from c3n_bot.store.models import DueWork, Patient, Schedule
from c3n_bot.store.models.scheduling import DueStatus
from c3n_bot.web.deps import ApiDep, DbDep, NowDep, Principal, ServicesDep

router = APIRouter(tags=["schedules"])
# How far ahead a resumed schedule looks for its next slot (a yearly rule fits).
_NEXT_SLOT_HORIZON_DAYS = 800


def _wall_time(value: str) -> str:
    """A local wall time ``HH:MM`` (24-hour), or ValueError."""
    try:
        parsed = time.fromisoformat(value)
    except ValueError:
        raise ValueError("not a local time HH:MM (e.g. 18:00)") from None
    if len(value) != 5 or parsed.tzinfo is not None:
        raise ValueError("not a local time HH:MM (e.g. 18:00)")
    return value


class ScheduleIn(BaseModel):
    """A flow on a recurrence, at a local wall time in the patient's timezone."""

    model_config = ConfigDict(extra="forbid")

    flow: str = Field(min_length=1, max_length=64)
    rrule: Annotated[str, Field(min_length=1, max_length=500), AfterValidator(timing.validate_rule)]
    at_local: Annotated[str, AfterValidator(_wall_time)]
    contact_id: uuid.UUID | None = None
    min_age: int | None = Field(default=None, ge=0, le=30)


class ScheduleChange(BaseModel):
    """Pause (``active: false``) or resume (``active: true``) one schedule."""

    model_config = ConfigDict(extra="forbid")

    active: bool


class ScheduleOut(BaseModel):
    """A schedule; its next slot in UTC and in the family's local time (None while paused)."""

    id: uuid.UUID
    patient_id: uuid.UUID
    contact_id: uuid.UUID | None
    template_id: uuid.UUID | None
    flow_id: str
    rrule: str
    timezone: str
    at_local: str
    min_age: int | None
    active: bool
    next_due_at: datetime | None
    next_due_local: str | None
    created_at: datetime

    @classmethod
    def of(cls, schedule: Schedule) -> ScheduleOut:
        """Build from a Schedule row."""
        upcoming = schedule.next_due_at if schedule.active else None
        local = upcoming.astimezone(timing.load_zone(schedule.timezone)) if upcoming else None
        return cls(
            id=schedule.id,
            patient_id=schedule.patient_id,
            contact_id=schedule.contact_id,
            template_id=schedule.template_id,
            flow_id=schedule.flow_id,
            rrule=schedule.rrule,
            timezone=schedule.timezone,
            at_local=datetime.fromisoformat(schedule.dtstart_local).strftime("%H:%M"),
            min_age=schedule.min_age,
            active=schedule.active,
            next_due_at=upcoming,
            next_due_local=local.isoformat() if local else None,
            created_at=schedule.created_at,
        )


class PausedOut(BaseModel):
    """Whether a patient's schedules are paused (visit reminders still go out)."""

    patient_id: uuid.UUID
    schedules_paused: bool


@router.get("/patients/{patient_id}/schedule-preview")
def schedule_preview(
    request: Request,
    patient_id: uuid.UUID,
    db: DbDep,
    now: NowDep,
    principal: ApiDep,
    days: Annotated[int, Query(ge=1, le=preview.MAX_DAYS)] = 14,
) -> list[preview.PreviewLine]:
    """What would be sent in the next ``days`` days, in local time, with every deferral's reason."""
    patient = patients.get_patient(db, patient_id=patient_id, allowed_centers=principal.centers)
    lines = preview.preview(
        db, patient_id=patient.id, days=days, now=now, allowed_centers=principal.centers
    )
    _audit(request, db, principal, "schedule.preview", patient, now, detail={"days": days})
    return lines


@router.get("/patients/{patient_id}/schedules")
def list_schedules(
    request: Request, patient_id: uuid.UUID, db: DbDep, now: NowDep, principal: ApiDep
) -> list[ScheduleOut]:
    """The patient's schedules, oldest first."""
    patient = patients.get_patient(db, patient_id=patient_id, allowed_centers=principal.centers)
    rows = db.scalars(
        select(Schedule)
        .where(Schedule.patient_id == patient.id)
        .order_by(Schedule.created_at, Schedule.flow_id)
    ).all()
    items = [ScheduleOut.of(row) for row in rows]
    _audit(request, db, principal, "schedule.list", patient, now)
    return items


@router.post("/patients/{patient_id}/schedules", status_code=status.HTTP_201_CREATED)
def create_schedule(
    request: Request,
    patient_id: uuid.UUID,
    data: ScheduleIn,
    db: DbDep,
    now: NowDep,
    services: ServicesDep,
    principal: ApiDep,
) -> ScheduleOut:
    """Add a schedule; its first slot is the next matching local time after now."""
    patient = patients.get_patient(db, patient_id=patient_id, allowed_centers=principal.centers)
    if not services.flows.has(data.flow):
        raise InvalidInput("flow", "unknown flow")
    if data.contact_id is not None and data.contact_id not in {
        link.contact_id for link in patient.links
    }:
        raise InvalidInput("contact_id", "not a contact of this patient")
    schedule = schedules.create_schedule(
        db,
        patient=patient,
        flow_id=data.flow,
        rrule=data.rrule,
        at_local=data.at_local,
        now=now,
        contact_id=data.contact_id,
        min_age=data.min_age,
    )
    detail = {"flow": data.flow, "rrule": schedule.rrule, "at_local": data.at_local}
    _audit(request, db, principal, "schedule.create", patient, now, schedule, detail)
    return ScheduleOut.of(schedule)


@router.patch("/schedules/{schedule_id}")
def change_schedule(
    request: Request,
    schedule_id: uuid.UUID,
    data: ScheduleChange,
    db: DbDep,
    now: NowDep,
    principal: ApiDep,
) -> ScheduleOut:
    """Pause or resume one schedule; pausing cancels its slots still waiting to go out."""
    schedule = db.get(Schedule, schedule_id)
    patient = db.get(Patient, schedule.patient_id) if schedule is not None else None
    if schedule is None or patient is None or patient.center_id not in principal.centers:
        raise NotFound("schedule")
    if data.active and not schedule.active:
        _resume(schedule, now)
    elif not data.active and schedule.active:
        _pause(db, schedule, now)
    action = "schedule.resume" if data.active else "schedule.pause"
    _audit(request, db, principal, action, patient, now, schedule)
    return ScheduleOut.of(schedule)


@router.post("/patients/{patient_id}/schedules/pause")
def pause_patient(
    request: Request, patient_id: uuid.UUID, db: DbDep, now: NowDep, principal: ApiDep
) -> PausedOut:
    """Pause every schedule of the patient (prompts are not sent; visit reminders still are)."""
    return _set_paused(request, patient_id, db, now, principal, paused=True)


@router.post("/patients/{patient_id}/schedules/resume")
def resume_patient(
    request: Request, patient_id: uuid.UUID, db: DbDep, now: NowDep, principal: ApiDep
) -> PausedOut:
    """Resume the patient's schedules from their next slot (nothing paused is sent late)."""
    return _set_paused(request, patient_id, db, now, principal, paused=False)


def _set_paused(
    request: Request,
    patient_id: uuid.UUID,
    db: Session,
    now: datetime,
    principal: Principal,
    *,
    paused: bool,
) -> PausedOut:
    patient = patients.get_patient(db, patient_id=patient_id, allowed_centers=principal.centers)
    patient.schedules_paused = paused
    action = "schedules.pause" if paused else "schedules.resume"
    _audit(request, db, principal, action, patient, now)
    return PausedOut(patient_id=patient.id, schedules_paused=paused)


def _pause(db: Session, schedule: Schedule, now: datetime) -> None:
    """Stop the schedule and cancel its slots already waiting, so none goes out while paused."""
    schedule.active = False
    db.execute(
        update(DueWork)
        .where(
            DueWork.schedule_id == schedule.id,
            DueWork.status.in_((DueStatus.PENDING, DueStatus.DEFERRED)),
        )
        .values(status=DueStatus.CANCELLED, reason="the schedule was paused", done_at=now)
    )


def _resume(schedule: Schedule, now: datetime) -> None:
    """Restart from the next slot after now: the paused slots are skipped, never sent late."""
    after = max(now, schedule.last_slot_at or now)
    upcoming = timing.next_slots(
        schedule.rrule,
        schedule.timezone,
        datetime.fromisoformat(schedule.dtstart_local),
        after,
        after + timedelta(days=_NEXT_SLOT_HORIZON_DAYS),
        limit=1,
    )
    schedule.active = True
    schedule.last_slot_at = after
    schedule.next_due_at = upcoming[0] if upcoming else None


def _audit(
    request: Request,
    db: Session,
    principal: Principal,
    action: str,
    patient: Patient,
    now: datetime,
    schedule: Schedule | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record who did what to whose schedules, and commit the request's work with it."""
    principal.audit(
        db,
        request,
        action=action,
        patient=patient,
        now=now,
        subject=str(schedule.id) if schedule is not None else None,
        detail=dict(detail) if detail else None,
    )
    db.commit()
