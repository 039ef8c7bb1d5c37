"""Community pages for organisers: activities, their invitations and answers, and the hub.

Organisers and admins only, within their own centers; nothing clinical is on these pages (a
segment's sample shows display names). Broadcasts are in :mod:`c3n_bot.web.community_broadcasts`.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.responses import Response

from c3n_bot.config import SUPPORTED_LANGUAGES
from c3n_bot.engine.messages import N_
from c3n_bot.service import activities, broadcasts, community_results, rsvps, segments, timing
from c3n_bot.service.errors import InvalidInput
from c3n_bot.store.base import Condition
from c3n_bot.store.models import Activity
from c3n_bot.web.access import CsrfDep
from c3n_bot.web.api.activities import csv_response
from c3n_bot.web.api.community_schemas import COMMUNITY_ROLES
from c3n_bot.web.community_forms import activity_of, query_form, read_form, segment_of
from c3n_bot.web.deps import DbDep, NowDep, Principal, StaffDep
from c3n_bot.web.templating import flash, render

router = APIRouter(prefix="/community")


def organiser(principal: StaffDep) -> Principal:
    """A signed-in organiser or admin (403 for a clinician)."""
    if principal.role not in COMMUNITY_ROLES:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not allowed for your role")
    return principal


OrganiserDep = Annotated[Principal, Depends(organiser)]


def organiser_form(principal: OrganiserDep, _csrf: CsrfDep) -> Principal:
    """An organiser or admin posting a form of this session."""
    return principal


OrganiserFormDep = Annotated[Principal, Depends(organiser_form)]


def choices(principal: Principal) -> dict[str, Any]:
    """What the segment and activity forms offer: the user's centers, conditions, languages."""
    return {
        "staff": principal.user,
        "centers": sorted(principal.user.centers, key=lambda c: c.name),
        "conditions": list(Condition),
        "languages": SUPPORTED_LANGUAGES,
    }


@router.get("")
def hub(request: Request, db: DbDep, principal: OrganiserDep) -> Response:
    """Activities with their answers, and broadcasts with their state."""
    context = {
        "staff": principal.user,
        "lines": rsvps.activities(db, centers=principal.centers),
        "broadcasts": broadcasts.list_broadcasts(db, allowed=principal.centers),
    }
    return render(request, "community.html", context)


@router.get("/segment")
def segment_count(request: Request, db: DbDep, now: NowDep, principal: OrganiserDep) -> Response:
    """The live count and sample of a segment as the form stands (JSON, for the page's script)."""
    segment = segment_of(query_form(request))
    try:
        scoped = segment.scoped(principal.centers) if segment is not None else None
    except InvalidInput:
        scoped = None
    if scoped is None:
        return JSONResponse({"count": None, "sample": []})
    count = segments.count(db, scoped, now=now)
    return JSONResponse({"count": count, "sample": segments.sample(db, scoped, now=now)})


@router.get("/activities/new")
def new_activity(request: Request, principal: OrganiserDep) -> Response:
    """An empty activity form."""
    context = {**choices(principal), "form": {}, "errors": [], "activity": None}
    return render(request, "community_activity_form.html", context)


@router.post("/activities")
async def create_activity(
    request: Request, db: DbDep, now: NowDep, principal: OrganiserFormDep
) -> Response:
    """Create an activity; the form comes back with its errors when something is wrong."""
    parsed = activity_of(await read_form(request))
    if parsed.data is not None:
        try:
            activity = activities.create_activity(
                db,
                data=parsed.data,
                allowed=principal.centers,
                actor=principal.actor(request),
                user_id=principal.user.id,
                now=now,
            )
        except InvalidInput as exc:
            db.rollback()
            parsed.errors.append(str(exc))
        else:
            db.commit()
            flash(request, "ok", N_("Activity saved."))
            return RedirectResponse(
                f"/community/activities/{activity.id}", status.HTTP_303_SEE_OTHER
            )
    context = {**choices(principal), "form": parsed.form, "errors": parsed.errors, "activity": None}
    return render(request, "community_activity_form.html", context, 422)


@router.get("/activities/{activity_id}")
def activity_page(
    request: Request, activity_id: uuid.UUID, db: DbDep, principal: OrganiserDep
) -> Response:
    """An activity with its answers, its invitations' delivery, and who is coming."""
    activity = activities.get_activity(db, activity_id=activity_id, allowed=principal.centers)
    results, answers = community_results.activity_results(db, activity)
    _, attendees = community_results.attendees(
        db, activity_id=activity_id, allowed=principal.centers
    )
    context = {
        "staff": principal.user,
        "activity": activity,
        "results": results,
        "answers": answers,
        "attendees": attendees,
    }
    return render(request, "community_activity.html", context)


@router.get("/activities/{activity_id}/edit")
def edit_activity(
    request: Request, activity_id: uuid.UUID, db: DbDep, principal: OrganiserDep
) -> Response:
    """The activity form, filled in."""
    activity = activities.get_activity(db, activity_id=activity_id, allowed=principal.centers)
    context = {**choices(principal), "form": _form_of(activity), "errors": [], "activity": activity}
    return render(request, "community_activity_form.html", context)


@router.post("/activities/{activity_id}")
async def save_activity(
    request: Request, activity_id: uuid.UUID, db: DbDep, now: NowDep, principal: OrganiserFormDep
) -> Response:
    """Save an activity's changes (more places promote the waitlist)."""
    activity = activities.get_activity(db, activity_id=activity_id, allowed=principal.centers)
    parsed = activity_of(await read_form(request))
    if parsed.data is not None:
        try:
            activities.update_activity(
                db,
                activity_id=activity_id,
                data=parsed.data,
                allowed=principal.centers,
                actor=principal.actor(request),
                now=now,
            )
        except InvalidInput as exc:
            db.rollback()
            parsed.errors.append(str(exc))
        else:
            db.commit()
            flash(request, "ok", N_("Activity saved."))
            return RedirectResponse(
                f"/community/activities/{activity_id}", status.HTTP_303_SEE_OTHER
            )
    context = {
        **choices(principal),
        "form": parsed.form,
        "errors": parsed.errors,
        "activity": activity,
    }
    return render(request, "community_activity_form.html", context, 422)


@router.get("/activities/{activity_id}/attendees.csv")
def attendees_csv(activity_id: uuid.UUID, db: DbDep, principal: OrganiserDep) -> Response:
    """Who said yes, as CSV."""
    activity, attendees = community_results.attendees(
        db, activity_id=activity_id, allowed=principal.centers
    )
    return csv_response(community_results.attendees_csv(activity, attendees), activity.id)


def _form_of(activity: Activity) -> dict[str, Any]:
    local = timing.as_utc(activity.starts_at).astimezone(timing.load_zone(activity.timezone))
    audience = activity.audience or {}
    return {
        "title": activity.title,
        "description": activity.description,
        "day": f"{local:%Y-%m-%d}",
        "time": f"{local:%H:%M}",
        "timezone": activity.timezone,
        "place": activity.place or "",
        "video_url": activity.video_url or "",
        "capacity": activity.capacity or "",
        "center_id": str(activity.center_id or ""),
        **segment_form(audience),
    }


def segment_form(segment: dict[str, Any]) -> dict[str, Any]:
    """A stored segment as the form's fields."""
    participated = segment.get("participated")
    return {
        "conditions": segment.get("conditions", []),
        "centers": [str(c) for c in segment.get("centers", [])],
        "roles": segment.get("roles", []),
        "languages": segment.get("languages", []),
        "age_min": segment.get("age_min") if segment.get("age_min") is not None else "",
        "age_max": segment.get("age_max") if segment.get("age_max") is not None else "",
        "consent": segment.get("consent") or "",
        "participated": "" if participated is None else ("yes" if participated else "no"),
    }
