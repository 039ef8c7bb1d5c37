"""The demo's community: a co-design session coming up, and the families who answered."""

from __future__ import annotations

import random
import uuid
from collections.abc import Collection
from datetime import datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.service import activities, attendance, audit, timing
from c3n_bot.service.segments import Segment
from c3n_bot.store.base import Purpose
from c3n_bot.store.models import Activity, Consent, Contact, ContactPatient, Patient, StaffUser
from c3n_bot.store.models.community import RsvpResponse

SEED = 2027
TIMEZONE = "America/New_York"
IN_DAYS = 12  # the session is this many days ahead, at STARTS_AT in TIMEZONE
STARTS_AT = time(18, 0)
PLANNED_DAYS_AGO = 9  # the organiser created it then; families answered since
ANSWERS = (RsvpResponse.YES,) * 4 + (RsvpResponse.MAYBE, RsvpResponse.NO)
TITLE = "Family advisory council: shaping the weekly check-in"
DESCRIPTION = (
    "Tell us how the check-in messages should sound, how often they should come, and what "
    "would make them easier for your family. Pizza and childcare provided.\n"
    "Cuéntenos cómo deben sonar los mensajes, con qué frecuencia deben llegar y qué los haría "
    "más fáciles para su familia. Habrá interpretación al español."
)


def seed_activity(
    db: Session, *, organiser: StaffUser, center_ids: Collection[uuid.UUID], now: datetime
) -> Activity:
    """The organiser's upcoming session for the whole network, with a few families' answers,
    kept as the invitation flow keeps them (places, waitlist)."""
    planned = now - timedelta(days=PLANNED_DAYS_AGO)
    zone = timing.load_zone(TIMEZONE)
    day = now.astimezone(zone).date() + timedelta(days=IN_DAYS)
    data = activities.ActivityIn(
        title=TITLE,
        description=DESCRIPTION,
        starts_at=datetime.combine(day, STARTS_AT),
        timezone=TIMEZONE,
        place="Riverside Children's, Family Resource Room",
        video_url="https://meet.example.org/c3n-family-council",
        capacity=12,
        audience=Segment(consent=Purpose.CODESIGN_INVITATIONS.value),
    )
    activity = activities.create_activity(
        db,
        data=data,
        allowed=set(center_ids),
        actor=audit.Actor(type="staff", id=str(organiser.id)),
        user_id=organiser.id,
        now=planned,
    )
    rng = random.Random(SEED)
    invited = _invitable(db, center_ids)
    chosen = rng.sample(invited, len(ANSWERS))
    # Answered on the days since, at waking hours: the invitation went out the day it was made.
    first = planned.astimezone(zone).date()
    times = sorted(
        timing.local_to_utc(
            datetime.combine(
                first + timedelta(days=rng.randrange(1, PLANNED_DAYS_AGO)),
                time(rng.randrange(8, 21), rng.randrange(60)),
            ),
            zone,
        )
        for _ in chosen
    )
    for contact_id, answer, at in zip(chosen, ANSWERS, times, strict=True):
        attendance.record_answer(
            db, activity_id=activity.id, contact_id=contact_id, answer=answer, now=at
        )
    return activity


def _invitable(db: Session, center_ids: Collection[uuid.UUID]) -> list[uuid.UUID]:
    """Contacts of the centers' patients who agreed to co-design invitations, by name."""
    rows = db.scalars(
        select(Contact.id)
        .join(Consent, Consent.contact_id == Contact.id)
        .where(
            Consent.purpose == Purpose.CODESIGN_INVITATIONS,
            Consent.granted.is_(True),
            Contact.id.in_(
                select(ContactPatient.contact_id)
                .join(Patient, Patient.id == ContactPatient.patient_id)
                .where(Patient.center_id.in_(list(center_ids)))
            ),
        )
        .order_by(Contact.display_name)
    )
    return list(rows)
