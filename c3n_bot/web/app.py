"""The application factory: routes, middleware, error pages, and embedded workers."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.telemetry import TelemetryConfig
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import Response

from c3n_bot.channels.registry import build_receivers, build_senders, register_webhooks
from c3n_bot.config import Settings
from c3n_bot.registry.sink_pusher import build_pushers
from c3n_bot.service.delivery import Sender
from c3n_bot.service.errors import Conflict, InvalidInput, NotFound
from c3n_bot.service.inbound_queue import InboundQueue, gather_for
from c3n_bot.service.workers import Runtime, system_clock
from c3n_bot.store.base import Channel
from c3n_bot.web import (
    activities,
    admin,
    admin_staff,
    appointment_import,
    auth,
    community,
    community_broadcasts,
    health,
    inbox,
    patient_actions,
    patient_pages,
    qi,
    simulator,
    webhooks_telegram,
    webhooks_twilio,
)
from c3n_bot.web.api import activities as api_activities
from c3n_bot.web.api import appointments as api_appointments
from c3n_bot.web.api import broadcasts as api_broadcasts
from c3n_bot.web.api import enrollments as api_enrollments
from c3n_bot.web.api import patients as api_patients
from c3n_bot.web.api import schedules as api_schedules
from c3n_bot.web.api import sessions as api_sessions
from c3n_bot.web.api import submissions as api_submissions
from c3n_bot.web.deps import AppState, LoginRequired
from c3n_bot.web.middleware import RequestContext
from c3n_bot.web.templating import render

log = logging.getLogger(__name__)
SESSION_MAX_AGE = 12 * 3600
STATIC_DIR = Path(__file__).resolve().parent / "static"


NO_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}
SWITCH_INTERVAL = 0.0005  # seconds; Python's default is 0.005


def prepare_to_serve() -> None:
    """Ready a serving process, once its app is built: freeze the heap, shorten the switch
    interval. Freezing moves what start-up built (flows, catalogs, mappers, compiled
    statements) out of the garbage collector's reach, so a full collection scans only what
    requests allocate: on a ~170 MiB server it took 134 ms, a pause every request waiting
    then shares (bench.inbound p99), and about 8 ms after."""
    gc.collect()
    gc.freeze()
    # The webhooks' writer thread lets go of the interpreter lock for every SQLite call and
    # must then wait for the event loop to hand it back: by default up to 5 ms each time,
    # which made the writer, not the CPU, the limit of webhook throughput (bench.inbound).
    sys.setswitchinterval(SWITCH_INTERVAL)


def create_app(
    settings: Settings,
    *,
    embedded_workers: bool = False,
    clock: Callable[[], datetime] = system_clock,
    senders: Mapping[Channel, Sender] | None = None,
    register: bool = True,
) -> FastAPI:
    """Build the app; with embedded_workers the clock and dispatcher run in this process.

    `senders` replaces the channels built from the settings (tests, benchmarks);
    `register` tells Telegram the webhook URL at start-up in webhook mode.
    """
    runtime = Runtime.build(
        settings, clock=clock, senders=build_senders(settings) if senders is None else senders
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if register:
            await asyncio.to_thread(register_webhooks, settings)
        workers = (
            runtime.background(extra=[*build_receivers(runtime), *build_pushers(runtime)])
            if embedded_workers
            else runtime.maintenance()
        )
        for worker in workers:
            worker.start()
        log.info("web.started", extra={"embedded_workers": embedded_workers})
        try:
            yield
        finally:
            for worker in reversed(workers):
                worker.stop()
            inbound.stop()
            runtime.engine.dispose()

    app = FastAPI(
        title="c3n-bot",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs",
        # Our metrics (/metrics) and JSON logs are our own. FastAPI's OpenTelemetry would
        # record exception messages (which may quote patient data) and costs every request
        # a provider lookup: off.
        telemetry=NO_TELEMETRY,
    )
    inbound = InboundQueue(
        runtime.sessions, runtime.services, gather=gather_for(runtime.engine.dialect.name)
    )
    app.state.c3n = AppState(
        settings=settings,
        sessions=runtime.sessions,
        clock=clock,
        services=runtime.services,
        inbound=inbound,
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_secret,
        session_cookie="c3n_session",
        max_age=SESSION_MAX_AGE,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    app.add_middleware(RequestContext)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # Routes are matched in order, one by one: the webhooks, the busiest, come first.
    for router in (
        webhooks_telegram.router,
        webhooks_twilio.router,
        health.router,
        auth.router,
        inbox.router,
        qi.router,
        patient_pages.router,
        patient_actions.router,
        appointment_import.router,
        admin.router,
        admin_staff.router,
        activities.router,
        community.router,
        community_broadcasts.router,
        simulator.router,
    ):
        app.include_router(router)
    app.include_router(api_patients.router, prefix="/api/v1")
    app.include_router(api_sessions.router, prefix="/api/v1")
    app.include_router(api_enrollments.router, prefix="/api/v1")
    app.include_router(api_appointments.router, prefix="/api/v1")
    app.include_router(api_schedules.router, prefix="/api/v1")
    app.include_router(api_submissions.router, prefix="/api/v1")
    app.include_router(api_activities.router, prefix="/api/v1")
    app.include_router(api_broadcasts.router, prefix="/api/v1")
    _install_error_handlers(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _exc: LoginRequired) -> Response:
        target = request.url.path
        return RedirectResponse(f"/login?next={target}", status.HTTP_303_SEE_OTHER)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, _exc: NotFound) -> Response:
        return _error(request, status.HTTP_404_NOT_FOUND, "Not found")

    @app.exception_handler(InvalidInput)
    async def _invalid(request: Request, exc: InvalidInput) -> Response:
        detail = [{"loc": ["body", exc.field], "msg": exc.message, "type": "value_error"}]
        return JSONResponse({"detail": detail}, status.HTTP_422_UNPROCESSABLE_CONTENT)

    @app.exception_handler(Conflict)
    async def _conflict(request: Request, exc: Conflict) -> Response:
        return JSONResponse({"detail": str(exc)}, status.HTTP_409_CONFLICT)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return _error(request, exc.status_code, str(exc.detail), dict(exc.headers or {}))


def _error(
    request: Request, code: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    # JSON for the API, a plain page for people; never a traceback or a record's content.
    if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", ""):
        return JSONResponse({"detail": message}, code, headers=headers)
    response = render(request, "error.html", {"title": message, "message": message}, code)
    if headers:
        response.headers.update(headers)
    return response
