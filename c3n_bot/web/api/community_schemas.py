"""Response shapes of the activities and broadcasts API, and who may call it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, status
from pydantic import BaseModel

from c3n_bot.service.community_results import Results
from c3n_bot.store.base import Role
from c3n_bot.store.models import Activity, Broadcast
from c3n_bot.store.models.community import BroadcastKind, BroadcastStatus
from c3n_bot.web.broadcast_texts import ShownLanguage
from c3n_bot.web.deps import ApiDep, Principal

COMMUNITY_ROLES = (Role.ORGANISER, Role.ADMIN)


def organiser_key(principal: ApiDep) -> Principal:
    """The owner of the API key, when an organiser or admin (403 for a clinician's key)."""
    if principal.role not in COMMUNITY_ROLES:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="not allowed for your role")
    return principal


OrganiserKeyDep = Annotated[Principal, Depends(organiser_key)]


class ResultsOut(BaseModel):
    """Recipients by outcome (queued, deferred, stopped, no_consent, no_channel) and their
    messages by delivery (waiting, sent, delivered, failed, cancelled)."""

    recipients: int
    outcomes: dict[str, int]
    delivery: dict[str, int]

    @classmethod
    def of(cls, results: Results) -> ResultsOut:
        """From the service's results."""
        return cls(
            recipients=results.recipients, outcomes=results.outcomes, delivery=results.delivery
        )


class ActivityOut(BaseModel):
    """A co-design activity."""

    id: uuid.UUID
    network_id: uuid.UUID
    center_id: uuid.UUID | None
    title: str
    description: str
    starts_at: datetime
    timezone: str
    place: str | None
    video_url: str | None
    capacity: int | None
    audience: dict[str, Any]
    created_at: datetime
    updated_at: datetime | None

    @classmethod
    def of(cls, activity: Activity) -> ActivityOut:
        """From a loaded row."""
        return cls.model_validate(activity, from_attributes=True)


class ActivityResultsOut(ActivityOut):
    """An activity with its answers (yes, no, maybe, waitlisted) and its invitations' results."""

    answers: dict[str, int]
    invitations: ResultsOut


class BroadcastOut(BaseModel):
    """A broadcast, with its results once sent."""

    id: uuid.UUID
    network_id: uuid.UUID
    activity_id: uuid.UUID | None
    kind: BroadcastKind
    name: str
    purpose: str
    templates: dict[str, str]
    segment: dict[str, Any]
    status: BroadcastStatus
    scheduled_at: datetime | None
    counts: dict[str, int]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancelled_at: datetime | None
    results: ResultsOut | None = None

    @classmethod
    def of(cls, broadcast: Broadcast, results: Results | None = None) -> BroadcastOut:
        """From a loaded row (and its results)."""
        out = cls.model_validate(broadcast, from_attributes=True)
        out.results = ResultsOut.of(results) if results is not None else None
        return out


class SegmentOut(BaseModel):
    """How many contacts a segment holds, and a few display names."""

    count: int
    sample: list[str]


class PreviewOut(SegmentOut):
    """A broadcast before it goes: its segment, and each language as chat and SMS carry it."""

    languages: list[ShownLanguage]
