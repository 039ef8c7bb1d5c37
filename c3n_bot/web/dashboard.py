"""Care-team dashboard pages: the patient list and a patient's page."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from starlette.responses import Response

from c3n_bot.service import patients
from c3n_bot.web.deps import DbDep, NowDep, StaffDep
from c3n_bot.web.templating import render

router = APIRouter()


@router.get("/")
def home(request: Request, db: DbDep, principal: StaffDep) -> Response:
    """The signed-in user's centers and their patients."""
    rows = patients.list_patients(db, allowed_centers=principal.centers, limit=200)
    context = {"staff": principal.user, "patients": rows}
    return render(request, "home.html", context)


@router.get("/patients/{patient_id}")
def patient_page(
    request: Request, patient_id: uuid.UUID, db: DbDep, now: NowDep, principal: StaffDep
) -> Response:
    """One patient's identity and contacts; every view is audited."""
    patient = patients.get_patient(db, patient_id=patient_id, allowed_centers=principal.centers)
    principal.audit(db, request, action="patient.view", patient=patient, now=now)
    db.commit()
    return render(request, "patient.html", {"staff": principal.user, "patient": patient})
