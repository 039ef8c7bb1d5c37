"""Patients and their contacts over the JSON API."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from c3n_bot.service import patients, schedules
from c3n_bot.service.patients import PatientIn
from c3n_bot.web.api.schemas import Page, PatientOut
from c3n_bot.web.deps import ApiDep, DbDep, NowDep

router = APIRouter(prefix="/patients", tags=["patients"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_patient(
    request: Request, data: PatientIn, db: DbDep, now: NowDep, principal: ApiDep
) -> PatientOut:
    """Create a patient with the contacts who will message for them."""
    patient = patients.create_patient(db, data=data, allowed_centers=principal.centers, now=now)
    # The center's default schedules for the patient's condition start right away.
    schedules.apply_templates(db, patient=patient, now=now)
    principal.audit(db, request, action="patient.create", patient=patient, now=now)
    db.commit()
    fresh = patients.get_patient(db, patient_id=patient.id, allowed_centers=principal.centers)
    return PatientOut.of(fresh)


@router.get("")
def list_patients(
    db: DbDep,
    principal: ApiDep,
    center_id: uuid.UUID | None = None,
    after: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[PatientOut]:
    """Patients of the caller's centers, a page at a time."""
    rows = patients.list_patients(
        db, allowed_centers=principal.centers, center_id=center_id, after=after, limit=limit
    )
    items = [PatientOut.of(p) for p in rows]
    return Page(items=items, next=str(rows[-1].id) if len(rows) == limit else None)


@router.get("/{patient_id}")
def get_patient(
    request: Request, patient_id: uuid.UUID, db: DbDep, now: NowDep, principal: ApiDep
) -> PatientOut:
    """One patient with contacts; 404 when absent or outside the caller's centers."""
    patient = patients.get_patient(db, patient_id=patient_id, allowed_centers=principal.centers)
    principal.audit(db, request, action="patient.view", patient=patient, now=now)
    db.commit()
    return PatientOut.of(patient)
