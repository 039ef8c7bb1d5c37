"""Liveness with a database check, and Prometheus metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response

from c3n_bot.web.deps import app_state

log = logging.getLogger(__name__)
router = APIRouter()


@router.get("/healthz", include_in_schema=False)
def healthz(request: Request) -> Response:
    """200 when the database answers, 503 otherwise."""
    try:
        with app_state(request).sessions() as db:
            db.execute(text("SELECT 1"))
    except SQLAlchemyError:
        log.warning("healthz.database_unreachable")
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503)
    return JSONResponse({"status": "ok", "database": "ok"})


@router.get("/livez", include_in_schema=False)
def livez() -> Response:
    """200 while the process serves requests (no database check: see /healthz)."""
    return Response(b"ok", media_type="text/plain")


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    """Prometheus exposition of this process's metrics."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
