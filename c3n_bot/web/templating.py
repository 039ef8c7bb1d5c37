"""Jinja2 templates with gettext, and the context every dashboard page gets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import Response

from c3n_bot.channels.text import render_text
from c3n_bot.web.csrf import csrf_token

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

_env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(default=True),
    extensions=["jinja2.ext.i18n"],
)
# Staff pages are English for now; the i18n extension keeps strings extractable by Babel.
_env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
_env.filters["as_text"] = render_text
templates = Jinja2Templates(env=_env)


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> Response:
    """Render a dashboard page with the CSRF token and the signed-in user."""
    full = {"csrf_token": csrf_token(request), "staff": None, **(context or {})}
    response: Response = templates.TemplateResponse(request, name, full, status_code=status_code)
    return response
