"""Lean routes for webhooks: plain Starlette endpoints that still name themselves."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from starlette.responses import Response

from c3n_bot.web.middleware import ROUTE_KEY

Endpoint = Callable[[Request], Awaitable[Response]]


def add_lean_post(router: APIRouter, path: str, endpoint: Endpoint) -> None:
    """A POST route without FastAPI's dependency solving and response models (a webhook needs
    neither, and they cost more CPU than its transaction). It names its path template for the
    access log and metrics, as FastAPI's routes do. `path` is the full path."""

    async def named(request: Request) -> Response:
        selected = request.scope.get(ROUTE_KEY)
        if isinstance(selected, dict):
            selected["path"] = path
        return await endpoint(request)

    router.add_route(path, named, methods=["POST"], include_in_schema=False)
