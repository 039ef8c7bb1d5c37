"""Broadcasts over the JSON API: preview, create, schedule, send, cancel, and their results."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, ConfigDict

from c3n_bot.service import broadcast_preview, broadcasts, community_results, segments
from c3n_bot.service.broadcasts import BroadcastIn
from c3n_bot.service.segments import Segment
from c3n_bot.web.api.community_schemas import (
    BroadcastOut,
    OrganiserKeyDep,
    PreviewOut,
    SegmentOut,
)
from c3n_bot.web.broadcast_texts import shown_all
from c3n_bot.web.deps import DbDep, NowDep, ServicesDep

router = APIRouter(prefix="/broadcasts", tags=["broadcasts"])


class ScheduleIn(BaseModel):
    """When to send (with its offset)."""

    model_config = ConfigDict(extra="forbid")

    scheduled_at: datetime


@router.post("/segment")
def count_segment(data: Segment, db: DbDep, now: NowDep, principal: OrganiserKeyDep) -> SegmentOut:
    """How many contacts a segment holds, with a few display names."""
    segment = data.scoped(principal.centers)
    return SegmentOut(
        count=segments.count(db, segment, now=now), sample=segments.sample(db, segment, now=now)
    )


@router.post("/preview")
def preview(
    data: BroadcastIn, db: DbDep, now: NowDep, services: ServicesDep, principal: OrganiserKeyDep
) -> PreviewOut:
    """The segment and each language's text with its SMS segment count (nothing is saved)."""
    found = broadcast_preview.preview(
        db, data=data, allowed=principal.centers, services=services, now=now
    )
    return PreviewOut(count=found.count, sample=found.sample, languages=shown_all(found.languages))


@router.post("", status_code=status.HTTP_201_CREATED)
def create_broadcast(
    request: Request, data: BroadcastIn, db: DbDep, now: NowDep, principal: OrganiserKeyDep
) -> BroadcastOut:
    """A new draft."""
    broadcast = broadcasts.create_broadcast(
        db,
        data=data,
        allowed=principal.centers,
        actor=principal.actor(request),
        user_id=principal.user.id,
        now=now,
    )
    db.commit()
    return BroadcastOut.of(broadcast)


@router.get("")
def list_broadcasts(db: DbDep, principal: OrganiserKeyDep) -> list[BroadcastOut]:
    """The broadcasts of the caller's networks, newest first."""
    return [BroadcastOut.of(b) for b in broadcasts.list_broadcasts(db, allowed=principal.centers)]


@router.get("/{broadcast_id}")
def get_broadcast(broadcast_id: uuid.UUID, db: DbDep, principal: OrganiserKeyDep) -> BroadcastOut:
    """One broadcast with its results: recipients by outcome, messages by delivery."""
    broadcast = broadcasts.get_broadcast(db, broadcast_id=broadcast_id, allowed=principal.centers)
    return BroadcastOut.of(broadcast, community_results.broadcast_results(db, [broadcast]))


@router.put("/{broadcast_id}")
def update_broadcast(
    request: Request,
    broadcast_id: uuid.UUID,
    data: BroadcastIn,
    db: DbDep,
    now: NowDep,
    principal: OrganiserKeyDep,
) -> BroadcastOut:
    """Change a draft or scheduled broadcast (409 once it is sending)."""
    broadcast = broadcasts.update_broadcast(
        db,
        broadcast_id=broadcast_id,
        data=data,
        allowed=principal.centers,
        actor=principal.actor(request),
        now=now,
    )
    db.commit()
    return BroadcastOut.of(broadcast)


@router.post("/{broadcast_id}/schedule")
def schedule(
    request: Request,
    broadcast_id: uuid.UUID,
    data: ScheduleIn,
    db: DbDep,
    now: NowDep,
    principal: OrganiserKeyDep,
) -> BroadcastOut:
    """Send at a time; the clock sends it from then on."""
    broadcast = broadcasts.schedule(
        db,
        broadcast_id=broadcast_id,
        at=data.scheduled_at,
        allowed=principal.centers,
        actor=principal.actor(request),
        now=now,
    )
    db.commit()
    return BroadcastOut.of(broadcast)


@router.post("/{broadcast_id}/send")
def send_now(
    request: Request,
    broadcast_id: uuid.UUID,
    db: DbDep,
    now: NowDep,
    services: ServicesDep,
    principal: OrganiserKeyDep,
) -> BroadcastOut:
    """Send now (a large segment is finished by the clock within a minute)."""
    broadcast = broadcasts.send_now(
        db,
        broadcast_id=broadcast_id,
        allowed=principal.centers,
        actor=principal.actor(request),
        services=services,
        now=now,
    )
    db.commit()
    return BroadcastOut.of(broadcast, community_results.broadcast_results(db, [broadcast]))


@router.post("/{broadcast_id}/cancel")
def cancel(
    request: Request, broadcast_id: uuid.UUID, db: DbDep, now: NowDep, principal: OrganiserKeyDep
) -> BroadcastOut:
    """Cancel a draft or scheduled broadcast (409 once it is sending)."""
    broadcast = broadcasts.cancel(
        db,
        broadcast_id=broadcast_id,
        allowed=principal.centers,
        actor=principal.actor(request),
        now=now,
    )
    db.commit()
    return BroadcastOut.of(broadcast)
