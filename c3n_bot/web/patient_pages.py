"""The patient list and a patient's chart: identity, contacts, reports, trends, visits, messages.

Clinicians and admins of the patient's center only (see :mod:`c3n_bot.web.access`); every view
of a chart is audited. Message bodies are shown to the center's clinicians only; everyone
else sees when, which channel and what became of each message.
"""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from c3n_bot.engine.definitions import FlowKind
from c3n_bot.service import (
    audit,
    message_log,
    patient_record,
    patient_timeline,
    patients,
    timing,
)
from c3n_bot.store.base import Purpose
from c3n_bot.store.models.scheduling import AppointmentStatus
from c3n_bot.web.access import ClinicalDep, may_read_messages
from c3n_bot.web.deps import DbDep, NowDep
from c3n_bot.web.page_thread import Page, path_uuid, staff_page
from c3n_bot.web.patient_charts import trend_chart
from c3n_bot.web.patient_view import report_lines
from c3n_bot.web.templating import render, viewer_language

router = APIRouter()
PATIENTS_PER_PAGE = 50


@router.get("/patients")
def patient_list(
    request: Request,
    db: DbDep,
    now: NowDep,
    principal: ClinicalDep,
    q: Annotated[str, Query(max_length=100)] = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    """The patients of the user's centers, by name; `q` finds a name or an external id."""
    rows = patients.search_patients(
        db,
        allowed_centers=principal.centers,
        text=q,
        offset=(page - 1) * PATIENTS_PER_PAGE,
        limit=PATIENTS_PER_PAGE + 1,
    )
    # Names and ids of many patients are patient data too: the list view is audited.
    shown = rows[:PATIENTS_PER_PAGE]
    detail = {"query": q, "page": page, "shown": len(shown)}
    audit.record(db, actor=principal.actor(request), action="patient.list", now=now, detail=detail)
    db.commit()
    context = {
        "staff": principal.user,
        "patients": shown,
        "q": q,
        "page": page,
        "more": len(rows) > PATIENTS_PER_PAGE,
    }
    return render(request, "patients.html", context)


@router.get("/patients/{patient_id}")
async def patient_page(request: Request, patient_id: str, db: DbDep) -> Response:
    """One patient's chart; every view is audited."""
    # The id is read after the sign-in and role checks, as before they ran in this hop.
    return await staff_page(
        request, db, functools.partial(_chart, raw_id=patient_id), clinical=True
    )


def _chart(page: Page, *, raw_id: str) -> Response:
    request, db, principal, services = page.request, page.db, page.principal, page.services
    patient_id = path_uuid(raw_id, "patient_id")
    patient = patients.get_patient(db, patient_id=patient_id, allowed_centers=principal.centers)
    translate = services.translator(viewer_language(request))
    bodies = may_read_messages(principal, patient.center_id)
    identities = {
        identity.id: (link.contact.display_name, identity.channel)
        for link in patient.links
        for identity in link.contact.identities
    }
    found = patient_timeline.reports(db, patient.id, flows=services.flows, translate=translate)
    context = {
        "staff": principal.user,
        "patient": patient,
        "contacts": patient_record.contacts(db, patient),
        "purposes": list(Purpose),
        "reports": report_lines(found.timeline, patient.timezone, translate),
        "charts": [trend_chart(trend, patient.timezone, translate) for trend in found.trends],
        "visits": patient_record.visits(db, patient.id),
        "closed": (AppointmentStatus.CANCELLED, AppointmentStatus.COMPLETED),
        "schedules": patient_record.schedules(db, patient),
        "messages": message_log.message_log(db, list(identities), with_bodies=bodies),
        "identities": identities,
        "bodies": bodies,
        "flows": [f for f in services.flows.all() if f.kind == FlowKind.QUESTIONNAIRE],
        "today": page.now.astimezone(timing.load_zone(patient.timezone)).strftime("%Y-%m-%dT%H:%M"),
    }
    audit.write(
        db,
        actor=principal.actor(request),
        action="patient.view",
        patient_id=patient.id,
        center_id=patient.center_id,
        now=page.now,
        detail={"message_bodies": bodies},
    )
    db.commit()
    return render(request, "patient.html", context)
