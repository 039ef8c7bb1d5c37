"""Co-design activities over the JSON API: organisers and admins, within their centers."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, status
from fastapi.responses import Response

from c3n_bot.service import activities, community_results, rsvps
from c3n_bot.service.activities import ActivityIn
from c3n_bot.web.api.community_schemas import (
    ActivityOut,
    ActivityResultsOut,
    OrganiserKeyDep,
    ResultsOut,
)
from c3n_bot.web.deps import DbDep, NowDep

router = APIRouter(prefix="/activities", tags=["activities"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_activity(
    request: Request, data: ActivityIn, db: DbDep, now: NowDep, principal: OrganiserKeyDep
) -> ActivityOut:
    """A new activity (a naive `starts_at` is a wall time in `timezone`)."""
    activity = activities.create_activity(
        db,
        data=data,
        allowed=principal.centers,
        actor=principal.actor(request),
        user_id=principal.user.id,
        now=now,
    )
    db.commit()
    return ActivityOut.of(activity)


@router.get("")
def list_activities(db: DbDep, principal: OrganiserKeyDep) -> list[ActivityOut]:
    """The caller's activities, the latest start first."""
    return [
        ActivityOut.of(line.activity) for line in rsvps.activities(db, centers=principal.centers)
    ]


@router.get("/{activity_id}")
def get_activity(
    activity_id: uuid.UUID, db: DbDep, principal: OrganiserKeyDep
) -> ActivityResultsOut:
    """One activity with its answers and the results of its invitations."""
    activity = activities.get_activity(db, activity_id=activity_id, allowed=principal.centers)
    results, answers = community_results.activity_results(db, activity)
    base = ActivityOut.of(activity).model_dump()
    return ActivityResultsOut(**base, answers=answers, invitations=ResultsOut.of(results))


@router.put("/{activity_id}")
def update_activity(
    request: Request,
    activity_id: uuid.UUID,
    data: ActivityIn,
    db: DbDep,
    now: NowDep,
    principal: OrganiserKeyDep,
) -> ActivityOut:
    """Replace an activity's fields; more places promote the waitlist at once."""
    activity = activities.update_activity(
        db,
        activity_id=activity_id,
        data=data,
        allowed=principal.centers,
        actor=principal.actor(request),
        now=now,
    )
    db.commit()
    return ActivityOut.of(activity)


@router.get("/{activity_id}/attendees.csv", response_class=Response)
def attendees_csv(activity_id: uuid.UUID, db: DbDep, principal: OrganiserKeyDep) -> Response:
    """Who said yes (attending or on the waitlist), as CSV."""
    activity, attendees = community_results.attendees(
        db, activity_id=activity_id, allowed=principal.centers
    )
    return csv_response(community_results.attendees_csv(activity, attendees), activity.id)


def csv_response(text: str, activity_id: uuid.UUID) -> Response:
    """A CSV download named after the activity."""
    headers = {"Content-Disposition": f'attachment; filename="attendees-{activity_id}.csv"'}
    return Response(text, media_type="text/csv; charset=utf-8", headers=headers)
