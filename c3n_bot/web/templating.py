"""Jinja2 templates with gettext in the viewer's language, and the context every page gets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.responses import Response

from c3n_bot.channels.text import render_text
from c3n_bot.config import SUPPORTED_LANGUAGES
from c3n_bot.service import timing
from c3n_bot.web.csrf import csrf_token
from c3n_bot.web.deps import app_state

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
DEFAULT_LANGUAGE = SUPPORTED_LANGUAGES[0]
FLASH_KEY = "flash"
MAX_KEPT_TEXTS = 4096


def local_time(value: datetime | None, tz: str) -> str:
    """An instant as a wall time in an IANA zone, with the zone's abbreviation."""
    if value is None:
        return "–"
    return wall_time(value, timing.load_zone(tz))


def wall_time(value: datetime, zone: tzinfo) -> str:
    """As :func:`local_time`, in a zone already loaded (for many instants of one page)."""
    return f"{timing.as_utc(value).astimezone(zone):%Y-%m-%d %H:%M %Z}"


_env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(default=True),
    extensions=["jinja2.ext.i18n"],
    # The templates ship with the code (a change is a restart): no stat of each file per page.
    auto_reload=False,
)
# English is the source language; render() hands each page the viewer's own gettext.
_env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
_env.filters["as_text"] = render_text
_env.filters["local"] = local_time
templates = Jinja2Templates(env=_env)


def viewer_language(request: Request) -> str:
    """The supported language the browser prefers most (Accept-Language), else English."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(request.headers.get("accept-language", "").split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        lang = tag.strip().lower().split("-")[0]
        if lang in SUPPORTED_LANGUAGES and weight > 0:
            ranked.append((-weight, position, lang))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE


def _gettext(translate: Callable[[str], str]) -> Callable[..., str]:
    # As Jinja's newstyle gettext in an autoescaped template (every template here is): the
    # translation is marked safe, then %-formatted with escaped values. A plain function, not
    # a pass_context one: Jinja copies the template's context for every call of one of those.
    # A text without variables is the same every time: kept, up to a bound (templates pass
    # literals; the bound keeps anything else from growing it).
    shown: dict[str, str] = {}

    def gettext(message: str, **variables: Any) -> str:
        if variables:
            return Markup(translate(message)) % variables
        text = shown.get(message)
        if text is None:
            text = Markup(translate(message))
            text = text % variables if "%" in text else text
            if len(shown) < MAX_KEPT_TEXTS:
                shown[message] = text
        return text

    return gettext


def page_gettext(request: Request, lang: str) -> Callable[..., str]:
    """The templates' gettext in `lang`: texts marked safe, as a template shows them."""
    state = app_state(request)
    gettext = state.gettexts.get(lang)
    if gettext is None:
        # English is the source language: its texts are shown as written.
        translate = str if lang == DEFAULT_LANGUAGE else state.services.translator(lang)
        gettext = state.gettexts[lang] = _gettext(translate)
    return gettext


def flash(request: Request, kind: str, message: str, detail: str | None = None) -> None:
    """A one-time notice (kind "ok" or "error") on the next page the user sees.

    `message` is an English source string (mark it with N_), shown in the viewer's language;
    `detail`, such as a service's reason for refusing, follows it as it is."""
    text = app_state(request).services.translate(viewer_language(request), message)
    request.session[FLASH_KEY] = {"kind": kind, "text": f"{text} {detail}" if detail else text}


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> Response:
    """Render a page in the viewer's language, with the CSRF token, the user and any notice."""
    lang = viewer_language(request)
    full: dict[str, Any] = {
        "csrf_token": csrf_token(request),
        "staff": None,
        "lang": lang,
        "flash": request.session.pop(FLASH_KEY, None),
        **(context or {}),
    }
    gettext = page_gettext(request, lang)
    full.update(_=gettext, gettext=gettext)
    response: Response = templates.TemplateResponse(request, name, full, status_code=status_code)
    return response
