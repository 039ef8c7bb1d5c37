"""Attendance: places up to the capacity, a waitlist promoted when someone declines, reminders."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from c3n_bot.engine.events import MessageOut
from c3n_bot.engine.messages import N_
from c3n_bot.engine.prompts import fill
from c3n_bot.i18n import Catalogs, shipped_catalogs
from c3n_bot.service import outbox, reach, timing
from c3n_bot.service.activity_values import values_for
from c3n_bot.store.models import Activity, Contact, OutboxMessage, Rsvp
from c3n_bot.store.models.community import RsvpResponse

log = logging.getLogger(__name__)

WAITLISTED = N_(
    "{activity_title} is full, so you are on the waitlist. "
    "We will write to you as soon as a place opens."
)
PROMOTED = N_("Good news: a place opened for {activity_title}, {activity_time}. See you there!")
REMINDER = N_("Reminder: {activity_title} is coming up, {activity_time}. {activity_place}")
# Below a reply's priority: the flow's own "thank you" reaches the family first.
KIND = "reminder"
# Reminders go at 18:00 (the activity's time) the day before; looked for this far ahead.
REMIND_DAYS_BEFORE = 1
LOOKAHEAD = timedelta(days=2)


def record_answer(
    db: Session,
    *,
    activity_id: uuid.UUID,
    contact_id: uuid.UUID,
    answer: RsvpResponse,
    now: datetime,
    catalogs: Catalogs | None = None,
) -> Rsvp | None:
    """Keep a contact's answer: a YES takes a place or joins the waitlist; a place given up
    goes to the first on the waitlist. None when the activity no longer exists."""
    # The lock makes concurrent answers take places one at a time.
    activity = db.get(Activity, activity_id, with_for_update=True)
    if activity is None:
        return None
    rsvp = db.scalar(
        select(Rsvp).where(Rsvp.activity_id == activity_id, Rsvp.contact_id == contact_id)
    )
    held_place = rsvp is not None and rsvp.response == RsvpResponse.YES and not rsvp.waitlisted
    if rsvp is not None and rsvp.response == RsvpResponse.YES and answer == RsvpResponse.YES:
        return rsvp  # a repeated YES keeps the place (or the waitlist position)
    # Asked before this answer is written: it must not count against itself.
    waitlisted = answer == RsvpResponse.YES and _full(db, activity)
    if rsvp is None:
        rsvp = Rsvp(activity_id=activity_id, contact_id=contact_id)
        db.add(rsvp)
    rsvp.response, rsvp.responded_at, rsvp.waitlisted = answer, now, waitlisted
    if waitlisted:
        _notify(db, activity, contact_id, WAITLISTED, now, catalogs)
    elif held_place:
        fill_places(db, activity, now, catalogs)
    log.info(
        "rsvp.recorded", extra={"activity_id": str(activity_id), "waitlisted": rsvp.waitlisted}
    )
    return rsvp


def fill_places(
    db: Session, activity: Activity, now: datetime, catalogs: Catalogs | None = None
) -> int:
    """Promote the waitlist, first come first served, while places are free; how many."""
    promoted = 0
    while not _full(db, activity):
        waiting = db.scalars(
            select(Rsvp)
            .where(Rsvp.activity_id == activity.id, Rsvp.waitlisted.is_(True))
            .order_by(Rsvp.responded_at, Rsvp.id)
            .limit(1)
        ).first()
        if waiting is None:
            break
        waiting.waitlisted, waiting.promoted_at = False, now
        _notify(db, activity, waiting.contact_id, PROMOTED, now, catalogs)
        promoted += 1
    return promoted


def seats_taken(db: Session, activity_id: uuid.UUID) -> int:
    """Confirmed places: YES answers not on the waitlist."""
    return (
        db.scalar(
            select(func.count())
            .select_from(Rsvp)
            .where(
                Rsvp.activity_id == activity_id,
                Rsvp.response == RsvpResponse.YES,
                Rsvp.waitlisted.is_(False),
            )
        )
        or 0
    )


def _full(db: Session, activity: Activity) -> bool:
    db.flush()
    return activity.capacity is not None and seats_taken(db, activity.id) >= activity.capacity


def remind_due(db: Session, now: datetime, catalogs: Catalogs | None = None) -> int:
    """Clock task: the day before an activity, one reminder to each confirmed attendee."""
    soon = db.scalars(
        select(Activity).where(Activity.starts_at > now, Activity.starts_at <= now + LOOKAHEAD)
    ).all()
    sent = 0
    for activity in soon:
        times = timing.reminder_times(activity.starts_at, activity.timezone, (REMIND_DAYS_BEFORE,))
        if times and now >= times[0][1]:
            sent += _remind(db, activity, now, catalogs)
    return sent


def _remind(db: Session, activity: Activity, now: datetime, catalogs: Catalogs | None) -> int:
    attendees = db.scalars(
        select(Rsvp.contact_id).where(
            Rsvp.activity_id == activity.id,
            Rsvp.response == RsvpResponse.YES,
            Rsvp.waitlisted.is_(False),
        )
    ).all()
    keys = {contact_id: f"activity-reminder:{activity.id}:{contact_id}" for contact_id in attendees}
    done = set(
        db.scalars(
            select(OutboxMessage.dedupe_key).where(OutboxMessage.dedupe_key.in_(keys.values()))
        )
    )
    rows = [
        row
        for contact_id, key in keys.items()
        if key not in done
        and (row := _row(db, activity, contact_id, REMINDER, now, catalogs, key)) is not None
    ]
    return outbox.enqueue_new(db, rows)


def _notify(
    db: Session,
    activity: Activity,
    contact_id: uuid.UUID,
    text: str,
    now: datetime,
    catalogs: Catalogs | None,
) -> None:
    row = _row(db, activity, contact_id, text, now, catalogs, None)
    if row is not None:
        outbox.enqueue_rows(db, [row])


def _row(
    db: Session,
    activity: Activity,
    contact_id: uuid.UUID,
    text: str,
    now: datetime,
    catalogs: Catalogs | None,
    dedupe_key: str | None,
) -> dict[str, object] | None:
    contact = db.get(Contact, contact_id)
    found = reach.reach_contact(db, contact, now) if contact is not None else None
    if contact is None or found is None:
        return None  # stopped everywhere, or gone: nothing to say
    identity, when = found
    translated = (catalogs or shipped_catalogs()).translate(contact.language, text)
    body = fill(translated, values_for(activity, lang=contact.language, tz=contact.timezone))
    return outbox.message_row(
        channel=identity.channel,
        address=identity.address,
        identity_id=identity.id,
        contact_id=contact.id,
        message=MessageOut(text=body.strip()),
        kind=KIND,
        now=now,
        not_before=when,
        dedupe_key=dedupe_key,
    )
