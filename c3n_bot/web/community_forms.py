"""The community pages' forms: fields in, the service's inputs out, errors kept for the page."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from c3n_bot.config import SUPPORTED_LANGUAGES
from c3n_bot.service import timing
from c3n_bot.service.activities import ActivityIn
from c3n_bot.service.broadcasts import BroadcastIn
from c3n_bot.service.errors import InvalidInput
from c3n_bot.service.segments import Segment

M = TypeVar("M", bound=BaseModel)
LISTS = ("conditions", "centers", "roles", "languages")
PARTICIPATED = {"yes": True, "no": False}


@dataclass
class Parsed(Generic[M]):
    """A form read into a service input, or the errors to show beside it."""

    form: dict[str, Any]
    data: M | None = None
    errors: list[str] = field(default_factory=list)


async def read_form(request: Request) -> dict[str, Any]:
    """Every field as typed: lists for the multiple-choice ones, text for the rest."""
    raw = await request.form()
    values: dict[str, Any] = {name: [str(v) for v in raw.getlist(name)] for name in LISTS}
    for name, value in raw.items():
        if name not in LISTS and isinstance(value, str):
            values[name] = value.strip()
    return values


def query_form(request: Request) -> dict[str, Any]:
    """The same from a query string (the live segment count)."""
    params = request.query_params
    values: dict[str, Any] = {name: params.getlist(name) for name in LISTS}
    values.update({k: v.strip() for k, v in params.items() if k not in LISTS})
    return values


def segment_fields(form: dict[str, Any]) -> dict[str, Any]:
    """The segment part of a form, as Segment's fields."""
    return {
        **{name: form.get(name, []) for name in LISTS},
        "age_min": _number(form.get("age_min")),
        "age_max": _number(form.get("age_max")),
        "consent": form.get("consent") or None,
        "participated": PARTICIPATED.get(form.get("participated", "")),
    }


def segment_of(form: dict[str, Any]) -> Segment | None:
    """The form's segment, or None when a field is invalid (the page then shows no count)."""
    try:
        return Segment.model_validate(segment_fields(form))
    except ValidationError:
        return None


def activity_of(form: dict[str, Any]) -> Parsed[ActivityIn]:
    """The activity form: day and time are a wall time in the chosen timezone."""
    fields = {
        "title": form.get("title", ""),
        "description": form.get("description", ""),
        "starts_at": f"{form.get('day', '')}T{form.get('time', '')}",
        "timezone": form.get("timezone", ""),
        "place": form.get("place") or None,
        "video_url": form.get("video_url") or None,
        "capacity": _number(form.get("capacity")),
        "center_id": form.get("center_id") or None,
        "audience": segment_fields(form),
    }
    return _parse(ActivityIn, fields, form)


def broadcast_of(form: dict[str, Any]) -> Parsed[BroadcastIn]:
    """The compose form: name, kind, activity, a template per language, the segment."""
    fields = {
        "name": form.get("name", ""),
        "kind": form.get("kind", "message"),
        "activity_id": form.get("activity_id") or None,
        "templates": {lang: form.get(f"template_{lang}", "") for lang in SUPPORTED_LANGUAGES},
        "segment": segment_fields(form),
    }
    return _parse(BroadcastIn, fields, form)


def send_at(form: dict[str, Any]) -> datetime:
    """The scheduled day and time, a wall time in the form's timezone, as UTC."""
    try:
        local = datetime.fromisoformat(f"{form.get('send_day', '')}T{form.get('send_time', '')}")
        zone = timing.load_zone(form.get("send_timezone", ""))
    except (ValueError, KeyError):
        raise InvalidInput("scheduled_at", "give a day, a time and a timezone") from None
    return timing.local_to_utc(local, zone)


def _parse(model: type[M], fields: dict[str, Any], form: dict[str, Any]) -> Parsed[M]:
    try:
        return Parsed(form, model.model_validate(fields))
    except ValidationError as exc:
        errors = [
            f"{'.'.join(str(part) for part in error['loc']) or 'form'}: {error['msg']}"
            for error in exc.errors()
        ]
        return Parsed(form, errors=errors)


def _number(value: Any) -> int | str | None:
    # An empty field is "no limit"; anything else is left for the model to judge.
    if value in (None, ""):
        return None
    return int(value) if str(value).isdigit() else str(value)
