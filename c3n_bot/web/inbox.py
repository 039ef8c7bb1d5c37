"""The inbox at `/`: open alerts and new submissions, filters, and acknowledging an alert."""

from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import RedirectResponse
from starlette.datastructures import QueryParams
from starlette.responses import Response

from c3n_bot.engine.definitions import FlowKind
from c3n_bot.engine.messages import N_
from c3n_bot.service import alerts, inbox
from c3n_bot.service.context import Services
from c3n_bot.service.timing import load_zone
from c3n_bot.store.base import Role
from c3n_bot.store.models import Center
from c3n_bot.web import inbox_view as view
from c3n_bot.web.access import ClinicalFormDep
from c3n_bot.web.csrf import csrf_token
from c3n_bot.web.deps import DbDep, NowDep, Principal
from c3n_bot.web.page_thread import Page, staff_page
from c3n_bot.web.templating import flash, page_gettext, render, viewer_language

router = APIRouter()
BAND_CODE = re.compile(r"^[a-z0-9_]{1,32}$")


@router.get("/")
async def inbox_page(request: Request, db: DbDep) -> Response:
    """Clinicians and admins: their centers' open alerts and newest submissions. Organisers
    see no clinical data: their centers and the QI pages only. A list is not audited (as the
    patient list is not); opening a patient's chart and acknowledging an alert are."""
    return await staff_page(request, db, _inbox)


def _inbox(page: Page) -> Response:
    request, db, principal = page.request, page.db, page.principal
    centers = _centers(principal)
    if principal.role == Role.ORGANISER:
        db.commit()  # read only: see below
        return render(request, "organiser_home.html", {"staff": principal.user, "centers": centers})
    params = request.query_params
    flows = _flow_context(page.services)
    filters = parse_filter(params, allowed=set(centers), flows=set(flows["titles"]))
    zone = _zone(centers, filters.center_id)
    scope = principal.centers
    alert_page = _page_number(params.get("apage"))
    open_alerts = inbox.open_alerts(
        db,
        centers=scope,
        filters=filters,
        zone=zone,
        offset=(alert_page - 1) * inbox.PAGE_SIZE,
    )
    before = inbox.Cursor.decode(params.get("before", ""))
    submissions = inbox.submissions(db, centers=scope, filters=filters, zone=zone, before=before)
    # Read only, so ended before rendering: SQLite's write lock (taken at BEGIN) is not held
    # while the page renders, and the session closes without a hop to the thread pool.
    db.commit()
    lang = viewer_language(request)
    translate = page.services.translator(lang)
    query = filter_query(filters)
    form = view.AckForm(
        csrf_token=csrf_token(request), back=query, gettext=page_gettext(request, lang)
    )
    context = {
        "staff": principal.user,
        "centers": centers,
        **flows,
        "filters": filters,
        "query": query,
        "alerts": view.alert_lines(open_alerts.rows, centers, page.now, translate, form),
        "more_alerts": open_alerts.more,
        "alert_page": alert_page,
        "submissions": view.submission_rows(
            submissions.rows,
            centers,
            flows["titles"],
            translate,
        ),
        "next_cursor": inbox.next_cursor(submissions),
        "first_page": before is None,
    }
    return render(request, "inbox.html", context)


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge(
    request: Request,
    alert_id: uuid.UUID,
    db: DbDep,
    now: NowDep,
    principal: ClinicalFormDep,
    note: Annotated[str, Form(max_length=alerts.MAX_NOTE)] = "",
    back: Annotated[str, Form()] = "",
) -> Response:
    """Acknowledge an alert with a note, then return to the inbox with the same filters."""
    done = alerts.acknowledge(
        db,
        alert_id=alert_id,
        staff_id=principal.user.id,
        allowed_centers=principal.centers,
        note=note,
        actor=principal.actor(request),
        now=now,
    )
    db.commit()
    if done:
        flash(request, "ok", N_("Alert acknowledged."))
    else:
        flash(request, "error", N_("This alert was already acknowledged."))
    # Rebuilt from the parsed filters, never echoed: `back` cannot redirect off-site.
    filters = parse_filter(QueryParams(back), allowed=principal.centers, flows=None)
    query = filter_query(filters)
    return RedirectResponse(f"/?{query}" if query else "/", status.HTTP_303_SEE_OTHER)


def parse_filter(
    params: QueryParams, *, allowed: set[uuid.UUID], flows: set[str] | None
) -> inbox.InboxFilter:
    """The filter of the inbox form; a value that is not valid is left out, not an error."""
    center = _uuid(params.get("center", ""))
    flow = params.get("flow", "")
    band = params.get("band", "")
    return inbox.InboxFilter(
        center_id=center if center in allowed else None,
        flow_id=flow if flow and (flows is None or flow in flows) and len(flow) <= 64 else None,
        band=band if BAND_CODE.match(band) else None,
        since=_date(params.get("since", "")),
        until=_date(params.get("until", "")),
    )


def filter_query(filters: inbox.InboxFilter) -> str:
    """The query string that reproduces a filter."""
    values = {
        "center": filters.center_id.hex if filters.center_id else None,
        "flow": filters.flow_id,
        "band": filters.band,
        "since": filters.since.isoformat() if filters.since else None,
        "until": filters.until.isoformat() if filters.until else None,
    }
    return urlencode({key: value for key, value in values.items() if value})


def _centers(principal: Principal) -> dict[uuid.UUID, Center]:
    return {c.id: c for c in sorted(principal.user.centers, key=lambda c: c.name)}


def _zone(centers: dict[uuid.UUID, Center], center_id: uuid.UUID | None) -> ZoneInfo:
    # A day range means the chosen center's days; across several centers, UTC days.
    return load_zone(centers[center_id].timezone) if center_id in centers else ZoneInfo("UTC")


def _flow_context(services: Services) -> dict[str, Any]:
    """The questionnaires to filter by, every flow's title, and the band codes they use."""
    questionnaires = [f for f in services.flows.all() if f.kind == FlowKind.QUESTIONNAIRE]
    bands = {band.code for f in questionnaires for score in f.scores for band in score.bands}
    return {
        "flows": [(f.id, f.title) for f in questionnaires],
        "titles": {f.id: f.title for f in services.flows.all()},
        "bands": sorted(bands),
    }


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _page_number(text: str | None) -> int:
    return int(text) if text and text.isdigit() and 0 < int(text) < 10_000 else 1
