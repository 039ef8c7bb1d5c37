"""Admin pages: the audit log, and the centers (name, timezone, crisis resources, on call).

Admins only, for their own centers (see :mod:`c3n_bot.web.access`); users and API keys are
in :mod:`c3n_bot.web.admin_staff`.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request, status
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from c3n_bot.config import SUPPORTED_LANGUAGES
from c3n_bot.engine.messages import N_
from c3n_bot.service import audit_log, centers
from c3n_bot.service.errors import Conflict, InvalidInput
from c3n_bot.store.base import Channel
from c3n_bot.web.access import AdminDep, AdminFormDep
from c3n_bot.web.deps import DbDep, NowDep
from c3n_bot.web.templating import flash, render

router = APIRouter(prefix="/admin")
Text = Annotated[str, Query(max_length=254)]


@router.get("")
def index(_principal: AdminDep) -> Response:
    """The admin pages start with the audit log."""
    return RedirectResponse("/admin/audit", status.HTTP_303_SEE_OTHER)


@router.get("/audit")
def audit_page(
    request: Request,
    db: DbDep,
    principal: AdminDep,
    actor: Text = "",
    action: Text = "",
    patient: Text = "",
    since: Text = "",
    until: Text = "",
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """Who did what, newest first, filtered by actor, action, patient and UTC days."""
    where = audit_log.AuditFilter(
        actor=actor, action=action, patient=patient, since=_day(since), until=_day(until)
    )
    found = audit_log.read(db, where=where, centers=principal.centers, before=before)
    query = {"actor": actor, "action": action, "patient": patient, "since": since, "until": until}
    context = {"staff": principal.user, "page": found, "filters": query}
    return render(request, "admin_audit.html", context)


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip()) if value.strip() else None
    except ValueError:
        return None  # a half-typed day filters nothing rather than failing the page


@router.get("/centers")
def center_page(request: Request, db: DbDep, principal: AdminDep) -> Response:
    """The admin's centers, each with its form, and a form for a new one."""
    context = {
        "staff": principal.user,
        "centers": centers.centers(db, allowed=principal.centers),
        "networks": sorted({(c.network_id, c.network.name) for c in principal.user.centers}),
        "languages": SUPPORTED_LANGUAGES,
        "on_call_channels": centers.ON_CALL_CHANNELS,
    }
    return render(request, "admin_centers.html", context)


async def center_fields(request: Request) -> centers.CenterFields:
    """The center form's fields (crisis resources come as one text per language)."""
    form = await request.form()

    def text(name: str, default: str = "") -> str:
        value = form.get(name, default)
        return value if isinstance(value, str) else default

    channel = text("on_call_channel")
    return centers.CenterFields(
        name=text("name"),
        timezone=text("timezone"),
        crisis_resources={lang: text(f"crisis_{lang}") for lang in SUPPORTED_LANGUAGES},
        on_call_channel=Channel(channel) if channel in {c.value for c in Channel} else None,
        on_call_address=text("on_call_address") or None,
        on_call_language=text("on_call_language", SUPPORTED_LANGUAGES[0]),
    )


FieldsDep = Annotated[centers.CenterFields, Depends(center_fields)]


@router.post("/centers/{center_id}")
def save_center(
    request: Request,
    center_id: uuid.UUID,
    db: DbDep,
    now: NowDep,
    principal: AdminFormDep,
    fields: FieldsDep,
) -> Response:
    """Save a center's name, timezone, crisis resources and on-call contact."""
    try:
        centers.update_center(
            db,
            center_id=center_id,
            fields=fields,
            allowed=principal.centers,
            actor=principal.actor(request),
            now=now,
        )
    except InvalidInput as exc:
        db.rollback()
        flash(request, "error", N_("Not saved:"), str(exc))
        return RedirectResponse(f"/admin/centers#c-{center_id}", status.HTTP_303_SEE_OTHER)
    db.commit()
    flash(request, "ok", N_("Center saved."))
    return RedirectResponse(f"/admin/centers#c-{center_id}", status.HTTP_303_SEE_OTHER)


@router.post("/centers")
def add_center(
    request: Request,
    db: DbDep,
    now: NowDep,
    principal: AdminFormDep,
    fields: FieldsDep,
    network: Annotated[uuid.UUID, Form()],
    slug: Annotated[str, Form(max_length=64)],
) -> Response:
    """Add a center to one of the admin's networks; the admin works for it at once."""
    try:
        centers.create_center(
            db,
            network_id=network,
            slug=slug,
            fields=fields,
            admin=principal.user,
            actor=principal.actor(request),
            now=now,
        )
    except (InvalidInput, Conflict) as exc:
        db.rollback()
        flash(request, "error", N_("Not saved:"), str(exc))
        return RedirectResponse("/admin/centers#new", status.HTTP_303_SEE_OTHER)
    db.commit()
    flash(request, "ok", N_("Center added."))
    return RedirectResponse("/admin/centers", status.HTTP_303_SEE_OTHER)
