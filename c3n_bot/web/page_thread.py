"""A dashboard page run in one hop to a worker thread: the sign-in lookup, then the page.

As dependencies, the sign-in lookup (a query, so a sync function) and the page each cost a hop
to the thread pool and back, and each async dependency a step of FastAPI's solving; for the
busiest pages (the inbox, a patient's chart) those cost more than rendering them. Here both
run in the same hop, in the same order, with the same exceptions: no session is still the
sign-in redirect (LoginRequired), a role not allowed still a 403 before anything is read, and
only then is a malformed id in the path a 422 (as FastAPI answers a route whose dependencies
pass but whose parameter does not).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from c3n_bot.service.context import Services
from c3n_bot.web.access import require_clinical
from c3n_bot.web.deps import Principal, app_state, signed_in


class Page:
    """What a page's body is handed: the request, its session, who asks, the time, services."""

    __slots__ = ("request", "db", "principal", "now", "services")

    def __init__(self, request: Request, db: Session, principal: Principal) -> None:
        state = app_state(request)
        self.request = request
        self.db = db
        self.principal = principal
        self.now: datetime = state.clock()
        self.services: Services = state.services


async def staff_page(
    request: Request, db: Session, body: Callable[[Page], Response], *, clinical: bool = False
) -> Response:
    """Run `body` for the signed-in staff user (a clinician or admin when `clinical`)."""

    def run() -> Response:
        principal = signed_in(request, db)
        if clinical:
            require_clinical(principal)
        return body(Page(request, db, principal))

    return await run_in_threadpool(run)


_UUID = TypeAdapter(uuid.UUID)


def path_uuid(value: str, name: str) -> uuid.UUID:
    """A path parameter read as a UUID, or the 422 FastAPI gives a `uuid.UUID` parameter."""
    try:
        return _UUID.validate_python(value, from_attributes=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        located = [{**e, "loc": ("path", name, *e["loc"])} for e in errors]
        raise RequestValidationError(located) from None
