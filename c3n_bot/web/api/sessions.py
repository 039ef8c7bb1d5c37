"""Start a flow for a patient now, over the JSON API."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from c3n_bot.service import patient_flows, patients
from c3n_bot.store.base import Channel
from c3n_bot.web.deps import ApiDep, DbDep, NowDep, ServicesDep

router = APIRouter(prefix="/patients", tags=["sessions"])


class SessionIn(BaseModel):
    """Which flow to start, and optionally who answers and on which channel."""

    model_config = ConfigDict(extra="forbid")

    flow: str = Field(min_length=1, max_length=64)
    contact_id: uuid.UUID | None = None
    channel: Channel | None = None


class SessionOut(BaseModel):
    """A started session, or a start queued behind the contact's active session."""

    status: str
    session_id: uuid.UUID | None
    queued_id: uuid.UUID | None
    contact_id: uuid.UUID


@router.post("/{patient_id}/sessions", status_code=status.HTTP_201_CREATED)
def start_session(
    request: Request,
    response: Response,
    patient_id: uuid.UUID,
    data: SessionIn,
    db: DbDep,
    now: NowDep,
    services: ServicesDep,
    principal: ApiDep,
) -> SessionOut:
    """Start `flow` for the patient; 202 when it waits for the contact's current session."""
    patient = patients.get_patient(db, patient_id=patient_id, allowed_centers=principal.centers)
    contact_id, result = patient_flows.start_for_patient(
        db,
        patient=patient,
        flow_id=data.flow,
        services=services,
        now=now,
        contact_id=data.contact_id,
        channel=data.channel,
    )
    principal.audit(
        db, request, action="session.start", patient=patient, now=now, detail={"flow": data.flow}
    )
    db.commit()
    if result.status == "queued":
        response.status_code = status.HTTP_202_ACCEPTED
    return SessionOut(
        status=result.status,
        session_id=result.session_id,
        queued_id=result.queued_id,
        contact_id=contact_id,
    )
