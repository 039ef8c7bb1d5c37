"""Start a flow for a patient now, as a care-team member would (dashboard or JSON API)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from c3n_bot.service import conversations
from c3n_bot.service.context import Services
from c3n_bot.service.errors import InvalidInput
from c3n_bot.service.sessions import StartError, StartResult
from c3n_bot.store.base import Channel, Relationship
from c3n_bot.store.models import Patient


def reporter_id(patient: Patient, contact_id: uuid.UUID | None) -> uuid.UUID:
    """Who answers: the given contact of the patient, else the patient themself, else a parent."""
    links = {link.contact_id: link for link in patient.links}
    if contact_id is not None and contact_id not in links:
        raise InvalidInput("contact_id", "not a contact of this patient")
    if not links:
        raise InvalidInput("contact_id", "the patient has no contact")
    return contact_id or min(links, key=lambda cid: links[cid].relation != Relationship.SELF)


def start_for_patient(
    db: Session,
    *,
    patient: Patient,
    flow_id: str,
    services: Services,
    now: datetime,
    contact_id: uuid.UUID | None = None,
    channel: Channel | None = None,
) -> tuple[uuid.UUID, StartResult]:
    """Start `flow_id` about the patient for one of their contacts (queued if they are busy).

    Returns the contact and the result; InvalidInput names the field that is wrong.
    """
    if not services.flows.has(flow_id):
        raise InvalidInput("flow", "unknown flow")
    reporter = reporter_id(patient, contact_id)
    try:
        result = conversations.start_flow(
            db,
            contact_id=reporter,
            flow_id=flow_id,
            patient_id=patient.id,
            services=services,
            now=now,
            channel=channel,
        )
    except StartError as exc:
        raise InvalidInput("channel" if channel else "contact_id", str(exc)) from None
    return reporter, result
