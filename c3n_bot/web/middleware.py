"""Request ids, access logs and metrics, as one small ASGI middleware."""

from __future__ import annotations

import logging
import random
import re
import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from c3n_bot.logs import request_id, request_line

log = logging.getLogger("c3n_bot.http")

REQUESTS = Counter("c3n_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("c3n_http_request_seconds", "HTTP request duration", ["method", "route"])
ROUTE_KEY = "c3n.route"
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# Request ids only tell log lines apart: no secret, so no system call to make one.
_ids = random.Random()


class RequestContext:
    """Tag each request with an id (taken from X-Request-ID when sane), log and time it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if _VALID_ID.match(incoming) else f"{_ids.getrandbits(128):032x}"
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500
        # Filled by a LeanRoute (web.routes); FastAPI's own routes set scope["route"].
        selected: dict[str, str] = {}
        scope[ROUTE_KEY] = selected

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        try:
            with request_line() as events:
                await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            # The route template, never the raw path: paths and queries may carry identifiers.
            route = getattr(scope.get("route"), "path", None) or selected.get("path", "unmatched")
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(elapsed)
            log.info(
                "http.request",
                extra={
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                    **events,
                },
            )
            request_id.reset(token)
