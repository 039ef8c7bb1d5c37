"""RSVPs to co-design activities as organisers see them: answer counts and names, never
clinical data."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from c3n_bot.service.errors import NotFound
from c3n_bot.store.models import Activity, Center, Contact, Rsvp
from c3n_bot.store.models.community import RsvpResponse


@dataclass(frozen=True)
class ActivityLine:
    """An activity with how many answered yes (with a place), no, maybe, or are waitlisted."""

    activity: Activity
    yes: int
    no: int
    maybe: int
    waitlisted: int


@dataclass(frozen=True)
class Answer:
    """One family's answer: the name they gave, never anything clinical."""

    name: str
    response: RsvpResponse
    waitlisted: bool
    responded_at: datetime


def visible_to(centers: Collection[uuid.UUID]) -> ColumnElement[bool]:
    """Activities of the networks of these centers: network-wide, or for one of the centers."""
    networks = select(Center.network_id).where(Center.id.in_(list(centers)))
    return and_(
        Activity.network_id.in_(networks),
        or_(Activity.center_id.is_(None), Activity.center_id.in_(list(centers))),
    )


def activities(
    db: Session, *, centers: Collection[uuid.UUID], limit: int = 200
) -> list[ActivityLine]:
    """The activities the user may see, latest first, with their answer counts."""
    rows = db.scalars(
        select(Activity).where(visible_to(centers)).order_by(Activity.starts_at.desc()).limit(limit)
    ).all()
    counts = answer_counts(db, [activity.id for activity in rows])
    return [ActivityLine(activity, **counts.get(activity.id, NO_ANSWERS)) for activity in rows]


NO_ANSWERS = {"yes": 0, "no": 0, "maybe": 0, "waitlisted": 0}


def answer_counts(db: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, int]]:
    """Per activity: yes (with a place), no, maybe and waitlisted."""
    found: dict[uuid.UUID, dict[str, int]] = {}
    if not ids:
        return found
    rows = db.execute(
        select(Rsvp.activity_id, Rsvp.response, Rsvp.waitlisted, func.count())
        .where(Rsvp.activity_id.in_(ids))
        .group_by(Rsvp.activity_id, Rsvp.response, Rsvp.waitlisted)
    )
    for activity_id, response, waitlisted, count in rows:
        line = found.setdefault(activity_id, dict(NO_ANSWERS))
        line["waitlisted" if waitlisted else response.value] += count
    return found


def answers(
    db: Session, *, activity_id: uuid.UUID, centers: Collection[uuid.UUID]
) -> tuple[Activity, list[Answer]]:
    """One activity the user may see and every answer to it; NotFound otherwise."""
    activity = db.scalar(select(Activity).where(Activity.id == activity_id, visible_to(centers)))
    if activity is None:
        raise NotFound("activity")
    rows = db.execute(
        select(Contact.display_name, Rsvp.response, Rsvp.waitlisted, Rsvp.responded_at)
        .join(Contact, Contact.id == Rsvp.contact_id)
        .where(Rsvp.activity_id == activity_id)
        .order_by(Rsvp.responded_at, Contact.display_name)
    )
    return activity, [Answer(*row) for row in rows]
