"""The web simulator: talk to any flow as a demo patient or parent, as on Telegram or SMS."""

from __future__ import annotations

import json
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from c3n_bot.service import audit, conversations, simulator
from c3n_bot.service.conversations import Inbound
from c3n_bot.store.base import Channel
from c3n_bot.store.models import Contact
from c3n_bot.web.access import ClinicalDep
from c3n_bot.web.csrf import verify_csrf
from c3n_bot.web.deps import DbDep, NowDep, ServicesDep
from c3n_bot.web.templating import render

router = APIRouter(prefix="/simulator")
MODES = ("telegram", "sms")


@router.get("")
def page(
    request: Request,
    db: DbDep,
    services: ServicesDep,
    principal: ClinicalDep,
    contact: uuid.UUID | None = None,
    mode: str = "telegram",
) -> Response:
    """Pick a contact, then chat as them."""
    people = simulator.contacts(db, centers=principal.centers)
    context: dict[str, object] = {
        "staff": principal.user,
        "contacts": people,
        "mode": mode if mode in MODES else "telegram",
        "flows": services.flows.all(),
        "message_id": uuid.uuid4().hex,
    }
    if contact is not None:
        identity = simulator.web_identity(db, contact_id=contact, centers=principal.centers)
        person = db.get(Contact, identity.contact_id)
        assert person is not None
        panel = simulator.panel(db, person)
        context.update(
            contact=person,
            lines=simulator.transcript(db, identity),
            panel=panel,
            state_json=json.dumps(panel.session.state, indent=2, ensure_ascii=False)
            if panel.session
            else None,
        )
    return render(request, "simulator.html", context)


@router.post("/send", dependencies=[Depends(verify_csrf)])
def send(
    db: DbDep,
    now: NowDep,
    services: ServicesDep,
    principal: ClinicalDep,
    contact: Annotated[uuid.UUID, Form()],
    message_id: Annotated[str, Form(pattern=r"^[0-9a-f]{32}$")],
    mode: Annotated[str, Form()] = "telegram",
    text: Annotated[str, Form(max_length=1600)] = "",
    choice: Annotated[str, Form()] = "",
) -> Response:
    """Hand one message to the service as the web channel; a resubmitted form counts once."""
    identity = simulator.web_identity(db, contact_id=contact, centers=principal.centers)
    picked = tuple(choice.split(":", 1)) if ":" in choice else None
    inbound = Inbound(
        channel=Channel.WEB,
        address=identity.address,
        provider_message_id=message_id,
        text=text,
        choice=(picked[0], picked[1]) if picked else None,
    )
    conversations.handle_inbound(db, inbound=inbound, services=services, now=now)
    db.commit()
    return RedirectResponse(
        f"/simulator?contact={contact}&mode={mode}#end", status.HTTP_303_SEE_OTHER
    )


@router.post("/start", dependencies=[Depends(verify_csrf)])
def start(
    request: Request,
    db: DbDep,
    now: NowDep,
    services: ServicesDep,
    principal: ClinicalDep,
    contact: Annotated[uuid.UUID, Form()],
    flow: Annotated[str, Form()],
    mode: Annotated[str, Form()] = "telegram",
    patient: Annotated[str, Form()] = "",
) -> Response:
    """Start a flow for the contact on the web channel, as the clock or a clinician would."""
    identity = simulator.web_identity(db, contact_id=contact, centers=principal.centers)
    if not services.flows.has(flow):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "unknown flow")
    try:
        patient_id = uuid.UUID(patient) if patient else None
        conversations.start_flow(
            db,
            contact_id=identity.contact_id,
            flow_id=flow,
            patient_id=patient_id,
            services=services,
            now=now,
            channel=Channel.WEB,
            trigger="manual",
        )
    except (ValueError, conversations.StartError) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    audit.record(
        db,
        actor=principal.actor(request),
        action="simulator.start",
        now=now,
        patient_id=patient_id,
        detail={"flow": flow},
    )
    db.commit()
    return RedirectResponse(
        f"/simulator?contact={contact}&mode={mode}#end", status.HTTP_303_SEE_OTHER
    )
