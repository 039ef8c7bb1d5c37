"""Invitations over the JSON API: a Telegram deep link and an SMS join code for a contact."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, ConfigDict

from c3n_bot.config import Settings
from c3n_bot.service import audit, enrollment, patients
from c3n_bot.service.errors import InvalidInput
from c3n_bot.web.deps import ApiDep, DbDep, NowDep, app_state

router = APIRouter(prefix="/patients", tags=["enrollment"])


class EnrollmentIn(BaseModel):
    """Who is invited: a contact already linked to the patient."""

    model_config = ConfigDict(extra="forbid")

    contact_id: uuid.UUID


class EnrollmentOut(BaseModel):
    """What to hand to the family; each works once, until it expires."""

    id: uuid.UUID
    contact_id: uuid.UUID
    telegram_link: str | None
    telegram_token: str
    sms_code: str
    sms_text: str
    expires_at: datetime


def bot_username_lookup(settings: Settings) -> str | None:
    """The Telegram bot's username for deep links (None when Telegram is off)."""
    if not settings.telegram_enabled:
        return None
    from c3n_bot.channels.telegram import bot_username

    return bot_username(settings)


@router.post("/{patient_id}/enrollments", status_code=status.HTTP_201_CREATED)
def create_enrollment(
    request: Request,
    patient_id: uuid.UUID,
    data: EnrollmentIn,
    db: DbDep,
    now: NowDep,
    principal: ApiDep,
) -> EnrollmentOut:
    """Create a single-use invitation for one of the patient's contacts."""
    patient = patients.get_patient(db, patient_id=patient_id, allowed_centers=principal.centers)
    if data.contact_id not in {link.contact_id for link in patient.links}:
        raise InvalidInput("contact_id", "not a contact of this patient")
    lookup: Callable[[Settings], str | None] = getattr(
        request.app.state, "bot_username", bot_username_lookup
    )
    invitation = enrollment.create_invitation(
        db,
        patient_id=patient.id,
        contact_id=data.contact_id,
        allowed_centers=principal.centers,
        now=now,
        bot_username=lookup(app_state(request).settings),
        created_by=principal.user.id,
    )
    audit.record(
        db,
        actor=principal.actor(request),
        action="enrollment.create",
        patient_id=patient.id,
        center_id=patient.center_id,
        now=now,
    )
    db.commit()
    row = invitation.enrollment
    return EnrollmentOut(
        id=row.id,
        contact_id=row.contact_id,
        telegram_link=invitation.telegram_link,
        telegram_token=row.token,
        sms_code=row.sms_code,
        sms_text=f"JOIN {row.sms_code}",
        expires_at=row.expires_at,
    )
