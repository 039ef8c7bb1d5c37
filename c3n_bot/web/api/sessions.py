"""Start a flow for a patient now, over the JSON API."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from c3n_bot.service import audit, conversations, patients
from c3n_bot.service.errors import InvalidInput
from c3n_bot.store.base import Channel, Relationship
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
    if not services.flows.has(data.flow):
        raise InvalidInput("flow", "unknown flow")
    links = {link.contact_id: link for link in patient.links}
    if data.contact_id is not None and data.contact_id not in links:
        raise InvalidInput("contact_id", "not a contact of this patient")
    if not links:
        raise InvalidInput("contact_id", "the patient has no contact")
    contact_id = data.contact_id or min(
        links, key=lambda cid: links[cid].relation != Relationship.SELF
    )
    try:
        result = conversations.start_flow(
            db,
            contact_id=contact_id,
            flow_id=data.flow,
            patient_id=patient.id,
            services=services,
            now=now,
            channel=data.channel,
        )
    except conversations.StartError as exc:
        raise InvalidInput("channel" if data.channel else "contact_id", str(exc)) from None
    audit.record(
        db,
        actor=principal.actor(request),
        action="session.start",
        patient_id=patient.id,
        center_id=patient.center_id,
        now=now,
        detail={"flow": data.flow},
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
