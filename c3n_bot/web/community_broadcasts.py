"""Community broadcast pages: compose with a preview per language, schedule, send, cancel."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from c3n_bot.config import SUPPORTED_LANGUAGES
from c3n_bot.engine.messages import N_
from c3n_bot.service import activities, broadcast_preview, broadcasts, community_results, rsvps
from c3n_bot.service.context import Services
from c3n_bot.service.errors import Conflict, InvalidInput
from c3n_bot.store.models import Broadcast
from c3n_bot.web.broadcast_texts import shown_all
from c3n_bot.web.community import OrganiserDep, OrganiserFormDep, choices, segment_form
from c3n_bot.web.community_forms import Parsed, broadcast_of, read_form, send_at
from c3n_bot.web.deps import DbDep, NowDep, Principal, ServicesDep
from c3n_bot.web.templating import flash, render

router = APIRouter(prefix="/community/broadcasts")
ACTIONS = ("preview", "save", "schedule", "send")
SAVED = {
    "save": N_("Draft saved."),
    "schedule": N_("Broadcast scheduled."),
    "send": N_("Broadcast is being sent."),
}


@router.get("/new")
def new_broadcast(
    request: Request, db: DbDep, principal: OrganiserDep, activity: uuid.UUID | None = None
) -> Response:
    """An empty compose form; from an activity, its invitation to the activity's audience."""
    form: dict[str, Any] = {"kind": "message"}
    if activity is not None:
        found = activities.get_activity(db, activity_id=activity, allowed=principal.centers)
        form = {"kind": "invitation", "activity_id": str(found.id), "name": found.title,
                **segment_form(found.audience or {})}  # fmt: skip
    return _page(request, db, principal, form)


@router.post("")
async def compose(
    request: Request, db: DbDep, now: NowDep, services: ServicesDep, principal: OrganiserFormDep
) -> Response:
    """Preview, save, schedule or send a new broadcast (the button pressed says which)."""
    return await _compose(request, db, now, services, principal, None)


@router.get("/{broadcast_id}")
def broadcast_page(
    request: Request, broadcast_id: uuid.UUID, db: DbDep, principal: OrganiserDep
) -> Response:
    """A broadcast: its state, recipients by outcome, messages by delivery."""
    broadcast = broadcasts.get_broadcast(db, broadcast_id=broadcast_id, allowed=principal.centers)
    context = {
        "staff": principal.user,
        "broadcast": broadcast,
        "results": community_results.broadcast_results(db, [broadcast]),
        "editable": broadcast.status in broadcasts.EDITABLE
        and broadcasts.may_change(broadcast, principal.centers),
    }
    return render(request, "community_broadcast.html", context)


@router.get("/{broadcast_id}/edit")
def edit_broadcast(
    request: Request, broadcast_id: uuid.UUID, db: DbDep, principal: OrganiserDep
) -> Response:
    """The compose form of a draft or scheduled broadcast."""
    broadcast = broadcasts.get_broadcast(db, broadcast_id=broadcast_id, allowed=principal.centers)
    return _page(request, db, principal, _form_of(broadcast), broadcast=broadcast)


@router.post("/{broadcast_id}")
async def compose_existing(
    request: Request,
    broadcast_id: uuid.UUID,
    db: DbDep,
    now: NowDep,
    services: ServicesDep,
    principal: OrganiserFormDep,
) -> Response:
    """Preview, save, schedule or send a draft or scheduled broadcast."""
    return await _compose(request, db, now, services, principal, broadcast_id)


@router.post("/{broadcast_id}/send")
def send_now(
    request: Request,
    broadcast_id: uuid.UUID,
    db: DbDep,
    now: NowDep,
    services: ServicesDep,
    principal: OrganiserFormDep,
) -> Response:
    """Send a saved broadcast now."""
    return _act(request, db, broadcast_id, "send", lambda: broadcasts.send_now(
        db, broadcast_id=broadcast_id, allowed=principal.centers,
        actor=principal.actor(request), services=services, now=now,
    ))  # fmt: skip


@router.post("/{broadcast_id}/cancel")
def cancel(
    request: Request, broadcast_id: uuid.UUID, db: DbDep, now: NowDep, principal: OrganiserFormDep
) -> Response:
    """Cancel a draft or scheduled broadcast."""
    return _act(request, db, broadcast_id, "cancel", lambda: broadcasts.cancel(
        db, broadcast_id=broadcast_id, allowed=principal.centers,
        actor=principal.actor(request), now=now,
    ))  # fmt: skip


def _act(
    request: Request, db: Session, broadcast_id: uuid.UUID, action: str, run: Callable[[], object]
) -> Response:
    try:
        run()
    except Conflict as exc:
        db.rollback()
        flash(request, "error", N_("Not done:"), str(exc))
    else:
        db.commit()
        flash(request, "ok", SAVED.get(action, N_("Broadcast cancelled.")))
    return RedirectResponse(f"/community/broadcasts/{broadcast_id}", status.HTTP_303_SEE_OTHER)


async def _compose(
    request: Request,
    db: Session,
    now: Any,
    services: Services,
    principal: Principal,
    broadcast_id: uuid.UUID | None,
) -> Response:
    form = await read_form(request)
    action = str(form.get("action") if form.get("action") in ACTIONS else "preview")
    parsed = broadcast_of(form)
    if parsed.data is None:
        return _page(request, db, principal, form, errors=parsed.errors, status_code=422)
    if action == "preview":
        return _preview(request, db, now, services, principal, parsed)
    try:
        broadcast = _save(request, db, now, services, principal, parsed, broadcast_id, action)
    except (InvalidInput, Conflict) as exc:
        db.rollback()
        return _page(request, db, principal, form, errors=[str(exc)], status_code=422)
    db.commit()
    flash(request, "ok", SAVED[action])
    return RedirectResponse(f"/community/broadcasts/{broadcast.id}", status.HTTP_303_SEE_OTHER)


def _save(
    request: Request,
    db: Session,
    now: Any,
    services: Services,
    principal: Principal,
    parsed: Parsed[broadcasts.BroadcastIn],
    broadcast_id: uuid.UUID | None,
    action: str,
) -> Broadcast:
    assert parsed.data is not None
    common = {"allowed": principal.centers, "actor": principal.actor(request), "now": now}
    if broadcast_id is None:
        broadcast = broadcasts.create_broadcast(
            db, data=parsed.data, user_id=principal.user.id, **common
        )
    else:
        broadcast = broadcasts.update_broadcast(
            db, broadcast_id=broadcast_id, data=parsed.data, **common
        )
    if action == "schedule":
        broadcasts.schedule(db, broadcast_id=broadcast.id, at=send_at(parsed.form), **common)
    elif action == "send":
        broadcasts.send_now(db, broadcast_id=broadcast.id, services=services, **common)
    return broadcast


def _preview(
    request: Request,
    db: Session,
    now: Any,
    services: Services,
    principal: Principal,
    parsed: Parsed[broadcasts.BroadcastIn],
) -> Response:
    assert parsed.data is not None
    try:
        found = broadcast_preview.preview(
            db, data=parsed.data, allowed=principal.centers, services=services, now=now
        )
    except InvalidInput as exc:
        return _page(request, db, principal, parsed.form, errors=[str(exc)], status_code=422)
    preview = {
        "count": found.count,
        "sample": found.sample,
        "languages": shown_all(found.languages),
    }
    return _page(request, db, principal, parsed.form, preview=preview)


def _page(
    request: Request,
    db: Session,
    principal: Principal,
    form: dict[str, Any],
    *,
    errors: list[str] | None = None,
    preview: dict[str, Any] | None = None,
    broadcast: Broadcast | None = None,
    status_code: int = 200,
) -> Response:
    centers = choices(principal)["centers"]
    context = {
        **choices(principal),
        "form": form,
        "errors": errors or [],
        "preview": preview,
        "broadcast": broadcast,
        "activities": [line.activity for line in rsvps.activities(db, centers=principal.centers)],
        "default_timezone": centers[0].timezone if centers else "UTC",
        "template_languages": SUPPORTED_LANGUAGES,
    }
    return render(request, "community_broadcast_form.html", context, status_code)


def _form_of(broadcast: Broadcast) -> dict[str, Any]:
    return {
        "name": broadcast.name,
        "kind": broadcast.kind.value,
        "activity_id": str(broadcast.activity_id or ""),
        **{f"template_{lang}": text for lang, text in broadcast.templates.items()},
        **segment_form(broadcast.segment),
    }
