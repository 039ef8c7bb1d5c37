"""Broadcasts: write one, schedule or send it, cancel a scheduled one; scoped to the organiser.

An organiser sees the broadcasts of their networks and changes only those whose segment lies
within their own centers (so no one reaches families outside their centers).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.service import activities, audit, broadcast_send, timing
from c3n_bot.service.context import Services
from c3n_bot.service.errors import Conflict, InvalidInput, NotFound
from c3n_bot.service.message_templates import TemplateProblem, compile_template
from c3n_bot.service.patients import Language
from c3n_bot.service.segments import Segment
from c3n_bot.store.base import Purpose
from c3n_bot.store.models import Activity, Broadcast
from c3n_bot.store.models.community import BroadcastKind, BroadcastStatus

PURPOSE = {
    BroadcastKind.MESSAGE: Purpose.COMMUNITY_BROADCASTS,
    BroadcastKind.INVITATION: Purpose.CODESIGN_INVITATIONS,
}
EDITABLE = (BroadcastStatus.DRAFT, BroadcastStatus.SCHEDULED)


class BroadcastIn(BaseModel):
    """A broadcast as an organiser writes it. An invitation sends the RSVP flow, not a text."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: BroadcastKind = BroadcastKind.MESSAGE
    activity_id: uuid.UUID | None = None
    # Jinja2 source per language; a language left empty gets the first one's text.
    templates: dict[Language, str] = Field(default_factory=dict)
    segment: Segment = Field(default_factory=Segment)

    @model_validator(mode="after")
    def _complete(self) -> BroadcastIn:
        self.templates = {lang: text for lang, text in self.templates.items() if text.strip()}
        if self.kind == BroadcastKind.INVITATION and self.activity_id is None:
            raise ValueError("an invitation needs an activity_id")
        if self.kind == BroadcastKind.MESSAGE and not self.templates:
            raise ValueError("a message needs a template in at least one language")
        return self


def scoped_input(
    db: Session, data: BroadcastIn, allowed: Collection[uuid.UUID]
) -> tuple[Segment, Activity | None, uuid.UUID]:
    """The segment within the caller's centers, the activity, and the one network they share."""
    segment = data.segment.scoped(allowed)
    activity = None
    if data.activity_id is not None:
        activity = activities.get_activity(db, activity_id=data.activity_id, allowed=allowed)
    networks = activities.networks_of(db, segment.centers)
    if activity is not None:
        networks.add(activity.network_id)
    if len(networks) != 1:
        raise InvalidInput("segment.centers", "choose centers of one network")
    return segment, activity, networks.pop()


def check_templates(templates: dict[str, str], *, with_activity: bool) -> None:
    """InvalidInput naming the first template that does not compile."""
    for lang, source in templates.items():
        try:
            compile_template(source, with_activity=with_activity)
        except TemplateProblem as exc:
            raise InvalidInput(f"templates.{lang}", str(exc)) from None


def create_broadcast(
    db: Session,
    *,
    data: BroadcastIn,
    allowed: Collection[uuid.UUID],
    actor: audit.Actor,
    user_id: uuid.UUID,
    now: datetime,
) -> Broadcast:
    """A new draft."""
    broadcast = Broadcast(
        status=BroadcastStatus.DRAFT, counts={}, created_by=user_id, created_at=now
    )
    _apply(db, broadcast, data, allowed)
    db.add(broadcast)
    db.flush()
    _audit(db, "broadcast.create", broadcast, actor, now)
    return broadcast


def update_broadcast(
    db: Session,
    *,
    broadcast_id: uuid.UUID,
    data: BroadcastIn,
    allowed: Collection[uuid.UUID],
    actor: audit.Actor,
    now: datetime,
) -> Broadcast:
    """Change a draft or a scheduled broadcast."""
    broadcast = _editable(db, broadcast_id, allowed)
    _apply(db, broadcast, data, allowed)
    broadcast.updated_at = now
    _audit(db, "broadcast.update", broadcast, actor, now)
    return broadcast


def schedule(
    db: Session,
    *,
    broadcast_id: uuid.UUID,
    at: datetime,
    allowed: Collection[uuid.UUID],
    actor: audit.Actor,
    now: datetime,
) -> Broadcast:
    """Send at `at` (the clock sends it at its first tick from then on)."""
    if at.tzinfo is None:
        raise InvalidInput("scheduled_at", "give a time with its offset")
    broadcast = _editable(db, broadcast_id, allowed)
    broadcast.status, broadcast.scheduled_at = BroadcastStatus.SCHEDULED, timing.as_utc(at)
    broadcast.updated_at = now
    _audit(db, "broadcast.schedule", broadcast, actor, now)
    return broadcast


def send_now(
    db: Session,
    *,
    broadcast_id: uuid.UUID,
    allowed: Collection[uuid.UUID],
    actor: audit.Actor,
    services: Services,
    now: datetime,
    limit: int = broadcast_send.REQUEST_LIMIT,
) -> Broadcast:
    """Start sending at once; a large segment is finished by the clock."""
    broadcast = _editable(db, broadcast_id, allowed)
    broadcast.status, broadcast.scheduled_at = BroadcastStatus.SCHEDULED, now
    _audit(db, "broadcast.send", broadcast, actor, now)
    broadcast_send.send_some(db, broadcast, now, services, limit=limit)
    return broadcast


def cancel(
    db: Session,
    *,
    broadcast_id: uuid.UUID,
    allowed: Collection[uuid.UUID],
    actor: audit.Actor,
    now: datetime,
) -> Broadcast:
    """Cancel a draft or scheduled broadcast before anything went."""
    broadcast = _editable(db, broadcast_id, allowed)
    broadcast.status, broadcast.cancelled_at = BroadcastStatus.CANCELLED, now
    _audit(db, "broadcast.cancel", broadcast, actor, now)
    return broadcast


def list_broadcasts(
    db: Session, *, allowed: Collection[uuid.UUID], limit: int = 200
) -> list[Broadcast]:
    """The broadcasts of the caller's networks, newest first."""
    query = select(Broadcast).where(Broadcast.network_id.in_(activities.networks_of(db, allowed)))
    return list(db.scalars(query.order_by(Broadcast.created_at.desc()).limit(limit)))


def get_broadcast(
    db: Session, *, broadcast_id: uuid.UUID, allowed: Collection[uuid.UUID]
) -> Broadcast:
    """One broadcast of the caller's networks, or NotFound."""
    broadcast = db.get(Broadcast, broadcast_id)
    if broadcast is None or broadcast.network_id not in activities.networks_of(db, allowed):
        raise NotFound("broadcast")
    return broadcast


def may_change(broadcast: Broadcast, allowed: Collection[uuid.UUID]) -> bool:
    """Whether the caller's centers cover every center the broadcast reaches."""
    centers = {uuid.UUID(str(c)) for c in broadcast.segment.get("centers", [])}
    return centers <= set(allowed)


def as_input(broadcast: Broadcast) -> BroadcastIn:
    """A stored broadcast as the input that would write it again (to edit it)."""
    return BroadcastIn(
        name=broadcast.name,
        kind=broadcast.kind,
        activity_id=broadcast.activity_id,
        templates=dict(broadcast.templates),
        segment=Segment.model_validate(broadcast.segment),
    )


def _editable(db: Session, broadcast_id: uuid.UUID, allowed: Collection[uuid.UUID]) -> Broadcast:
    broadcast = db.get(Broadcast, broadcast_id, with_for_update=True)
    if broadcast is None or not may_change(broadcast, allowed):
        raise NotFound("broadcast")
    if broadcast.status not in EDITABLE:
        raise Conflict(f"the broadcast is {broadcast.status.value}")
    return broadcast


def _apply(
    db: Session, broadcast: Broadcast, data: BroadcastIn, allowed: Collection[uuid.UUID]
) -> None:
    segment, activity, network_id = scoped_input(db, data, allowed)
    check_templates(data.templates, with_activity=activity is not None)
    broadcast.network_id = network_id
    broadcast.activity_id = activity.id if activity else None
    broadcast.kind = data.kind
    broadcast.purpose = PURPOSE[data.kind].value
    broadcast.name = data.name.strip()
    broadcast.templates = dict(data.templates)
    broadcast.segment = segment.stored()


def _audit(
    db: Session, action: str, broadcast: Broadcast, actor: audit.Actor, now: datetime
) -> None:
    detail = {"status": broadcast.status.value, "kind": broadcast.kind.value}
    audit.record(db, actor=actor, action=action, subject=str(broadcast.id), detail=detail, now=now)
