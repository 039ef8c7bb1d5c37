"""Rendering for text-only channels (SMS, console, the simulator's SMS mode)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def render_text(body: str, payload: Mapping[str, Any]) -> str:
    """A message with its numbered options (when shown) and what to reply."""
    lines = [body]
    if payload.get("show_options", True):
        lines.extend(f"{c['number']} {c['label']}" for c in payload.get("choices", ()))
    hint = payload.get("hint")
    if hint:
        lines.append(f"({hint})")
    return "\n".join(lines)
