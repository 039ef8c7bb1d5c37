"""The console channel: run one flow in a terminal, rendered as an SMS would be."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime

from c3n_bot.channels.text import render_text
from c3n_bot.engine import runner
from c3n_bot.engine.definitions import Flow
from c3n_bot.engine.events import (
    AlertRaised,
    Context,
    Event,
    FlowEnded,
    MessageOut,
    SubmissionCompleted,
    TextInput,
)


def run_console(
    flow: Flow,
    ctx: Context,
    *,
    read: Callable[[], str | None],
    write: Callable[[str], None],
    clock: Callable[[], datetime],
) -> dict[str, object] | None:
    """Talk through a flow until it ends or input runs out; returns the submission, if any."""
    step = runner.start(flow, ctx, clock())
    result = _show(step.events, write)
    state = step.state
    while not state.get("ended"):
        text = read()
        if text is None:
            break
        step = runner.resume(flow, state, TextInput(text), ctx, clock())
        state = step.state
        result = _show(step.events, write) or result
    return result


def _show(events: list[Event], write: Callable[[str], None]) -> dict[str, object] | None:
    result = None
    for event in events:
        if isinstance(event, MessageOut):
            payload = {
                "choices": [asdict(c) for c in event.choices],
                "hint": event.hint,
                "show_options": event.show_options,
            }
            write(render_text(event.text, payload))
        elif isinstance(event, AlertRaised):
            crisis = " (crisis resources sent)" if event.crisis else ""
            write(f"[alert {event.severity}: {event.title}{crisis}]")
            if event.message:
                write(event.message)
        elif isinstance(event, SubmissionCompleted):
            result = asdict(event)
            write(f"[submission {event.status}: scores {event.scores} bands {event.bands}]")
        elif isinstance(event, FlowEnded):
            write(f"[flow ended: {event.reason}]")
    return result
