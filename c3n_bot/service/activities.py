"""Co-design activities: create, edit and read them, scoped to the organiser's centers."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.service import attendance, audit, timing
from c3n_bot.service.errors import InvalidInput, NotFound
from c3n_bot.service.patients import TimeZone
from c3n_bot.service.rsvps import visible_to
from c3n_bot.service.segments import Segment
from c3n_bot.store.models import Activity, Center


def _web_link(value: str | None) -> str | None:
    if value and not value.startswith(("https://", "http://")):
        raise ValueError("a video link starts with https://")
    return value or None


class ActivityIn(BaseModel):
    """An activity as an organiser writes it; a naive start is a wall time in `timezone`."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    starts_at: datetime
    timezone: TimeZone
    place: str | None = Field(default=None, max_length=300)
    video_url: Annotated[str | None, AfterValidator(_web_link)] = Field(
        default=None, max_length=500
    )
    capacity: int | None = Field(default=None, ge=1, le=100_000)
    # None: the whole network of the organiser's centers.
    center_id: uuid.UUID | None = None
    audience: Segment = Field(default_factory=Segment)

    def start_utc(self) -> datetime:
        """The start as an aware UTC instant."""
        if self.starts_at.tzinfo is None:
            return timing.local_to_utc(self.starts_at, timing.load_zone(self.timezone))
        return timing.as_utc(self.starts_at)


def networks_of(db: Session, centers: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """The networks the given centers belong to."""
    found = db.scalars(select(Center.network_id).where(Center.id.in_(list(centers))))
    return set(found)


def get_activity(
    db: Session, *, activity_id: uuid.UUID, allowed: Collection[uuid.UUID]
) -> Activity:
    """One activity the caller may see, or NotFound."""
    query = select(Activity).where(Activity.id == activity_id, visible_to(allowed))
    activity = db.scalar(query)
    if activity is None:
        raise NotFound("activity")
    return activity


def create_activity(
    db: Session,
    *,
    data: ActivityIn,
    allowed: Collection[uuid.UUID],
    actor: audit.Actor,
    user_id: uuid.UUID,
    now: datetime,
) -> Activity:
    """A new activity in the network of the organiser's centers."""
    activity = Activity(
        network_id=_network(db, data, allowed),
        created_by=user_id,
        created_at=now,
        **_fields(data, allowed),
    )
    db.add(activity)
    db.flush()
    _audit(db, "activity.create", activity, actor, now)
    return activity


def update_activity(
    db: Session,
    *,
    activity_id: uuid.UUID,
    data: ActivityIn,
    allowed: Collection[uuid.UUID],
    actor: audit.Actor,
    now: datetime,
) -> Activity:
    """Change an activity; more places promote the waitlist at once."""
    activity = get_activity(db, activity_id=activity_id, allowed=allowed)
    if _network(db, data, allowed) != activity.network_id:
        raise InvalidInput("center_id", "a center of another network")
    for name, value in _fields(data, allowed).items():
        setattr(activity, name, value)
    activity.updated_at = now
    db.flush()
    attendance.fill_places(db, activity, now)
    _audit(db, "activity.update", activity, actor, now)
    return activity


def _fields(data: ActivityIn, allowed: Collection[uuid.UUID]) -> dict[str, object]:
    data.audience.scoped(allowed)  # refuses a center outside the organiser's
    return {
        "center_id": data.center_id,
        "title": data.title.strip(),
        "description": data.description.strip(),
        "starts_at": data.start_utc(),
        "timezone": data.timezone,
        "place": (data.place or "").strip() or None,
        "video_url": data.video_url,
        "capacity": data.capacity,
        "audience": data.audience.stored(),
    }


def _network(db: Session, data: ActivityIn, allowed: Collection[uuid.UUID]) -> uuid.UUID:
    if data.center_id is not None and data.center_id not in allowed:
        raise InvalidInput("center_id", "not one of your centers")
    centers = [data.center_id] if data.center_id else list(allowed)
    networks = networks_of(db, centers)
    if len(networks) != 1:
        raise InvalidInput("center_id", "choose the center: your centers span several networks")
    return networks.pop()


def _audit(db: Session, action: str, activity: Activity, actor: audit.Actor, now: datetime) -> None:
    audit.record(
        db, actor=actor, action=action, subject=str(activity.id), center_id=activity.center_id,
        now=now,
    )  # fmt: skip
