"""Run a scripted conversation through the engine and render it as a readable transcript."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from c3n_bot.config import data_dir
from c3n_bot.engine import runner
from c3n_bot.engine.definitions import Flow
from c3n_bot.engine.events import (
    AlertRaised,
    AnswerRecorded,
    ChoiceInput,
    Context,
    Event,
    FlowEnded,
    Input,
    MessageOut,
    Subject,
    SubjectChosen,
    SubmissionCompleted,
    TextInput,
)
from c3n_bot.engine.loader import parse_flow
from c3n_bot.i18n import shipped_catalogs

FIXED_NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
FLOWS_DIR = data_dir("flows")
TRANSCRIPTS_DIR = Path(__file__).resolve().parent.parent / "transcripts"
LANGUAGES = ("en", "es")

Reply = str | ChoiceInput


def flow_ids() -> list[str]:
    """The id (file stem) of every shipped flow file."""
    return sorted(path.stem for path in FLOWS_DIR.glob("*.yaml"))


@cache
def load_flow(flow_id: str) -> Flow:
    """A shipped flow, parsed from flows/<flow_id>.yaml."""
    path = FLOWS_DIR / f"{flow_id}.yaml"
    return parse_flow(path.read_text("utf-8"), str(path))


def context(
    lang: str,
    *,
    subjects: Sequence[Subject] = (),
    proxy: bool = False,
    values: Mapping[str, str] | None = None,
    previous_scores: Mapping[str, Any] | None = None,
) -> Context:
    """A Context with the shipped translations of `lang`."""
    return Context(
        lang=lang,
        translate=shipped_catalogs().translator(lang),
        subjects=tuple(subjects),
        proxy=proxy,
        previous_scores=dict(previous_scores or {}),
        values=dict(values or {}),
    )


@dataclass(frozen=True)
class Script:
    """A scripted conversation: who talks to which flow, and what they reply in turn."""

    flow_id: str
    lang: str
    replies: tuple[Reply, ...]
    variant: str = ""
    note: str = ""
    subjects: tuple[Subject, ...] = ()
    proxy: bool = False
    values: Mapping[str, str] = field(default_factory=dict)
    previous_scores: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The golden file's stem: <flow>.<lang>, or <flow>.<variant>.<lang>."""
        parts = (
            (self.flow_id, self.variant, self.lang) if self.variant else (self.flow_id, self.lang)
        )
        return ".".join(parts)

    def context(self) -> Context:
        """The engine Context this script runs with."""
        return context(
            self.lang,
            subjects=self.subjects,
            proxy=self.proxy,
            values=self.values,
            previous_scores=self.previous_scores,
        )


@dataclass(frozen=True)
class Turn:
    """One reply (None for the flow's start) and the events it produced."""

    reply: Input | None
    events: tuple[Event, ...]


@dataclass(frozen=True)
class Conversation:
    """A whole run: its turns and the final state."""

    turns: tuple[Turn, ...]
    state: dict[str, Any]


def as_input(reply: Reply) -> Input:
    """A script reply as an engine input: text, or a button press."""
    return TextInput(reply) if isinstance(reply, str) else reply


def run(
    flow: Flow, ctx: Context, replies: Sequence[Reply], now: datetime = FIXED_NOW
) -> Conversation:
    """Start a flow and feed it every reply in turn (replies after the end are still sent)."""
    step = runner.start(flow, ctx, now)
    turns = [Turn(None, tuple(step.events))]
    state = step.state
    for reply in replies:
        step = runner.resume(flow, state, as_input(reply), ctx, now)
        state = step.state
        turns.append(Turn(as_input(reply), tuple(step.events)))
    return Conversation(tuple(turns), state)


def choice(flow: Flow, item_id: str, value: Any) -> ChoiceInput:
    """The button press choosing the option of an item that has this value (or code)."""
    item = flow.item(item_id)
    for option in item.options:
        if option.value == value or option.code == value:
            return ChoiceInput(item_id, option.code)
    raise KeyError(f"{item_id} has no option with value {value!r}")


def answer_items(
    flow: Flow,
    ctx: Context,
    replies: Mapping[str, Reply | None],
    now: datetime = FIXED_NOW,
) -> Conversation:
    """Start a flow and answer each question it asks from `replies` (None means SKIP).

    Stops when the flow ends; a question missing from `replies` is a KeyError, so a test
    notices a flow asking something it did not expect.
    """
    step = runner.start(flow, ctx, now)
    turns = [Turn(None, tuple(step.events))]
    state = step.state
    for _ in range(len(flow.items) * 2):
        item = runner.current_item(flow, state)
        if state["ended"] or item is None:
            break
        wanted = replies[item.id]
        reply = as_input("skip" if wanted is None else wanted)
        step = runner.resume(flow, state, reply, ctx, now)
        state = step.state
        turns.append(Turn(reply, tuple(step.events)))
    return Conversation(tuple(turns), state)


def events_of(conversation: Conversation) -> list[Event]:
    """Every event of a conversation, in order."""
    return [event for turn in conversation.turns for event in turn.events]


def run_script(script: Script) -> Conversation:
    """Run a Script with its flow and context at the fixed clock."""
    return run(load_flow(script.flow_id), script.context(), script.replies)


def render_reply(reply: Input) -> str:
    """The user's side of a turn."""
    if isinstance(reply, TextInput):
        return f"> {reply.text}"
    return f"> [button {reply.item_id} {reply.code}]"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _message(event: MessageOut) -> list[str]:
    first, *rest = event.text.split("\n")
    lines = [f"< {first}", *(f"  {line}" for line in rest)]
    lines.extend(f"  [{choice.number}] {choice.label}" for choice in event.choices)
    if event.hint:
        lines.append(f"  ({event.hint})")
    if not event.show_options:
        lines.append("  (options shown: no)")
    return lines


def _submission(event: SubmissionCompleted) -> str:
    parts = [f"# submission {event.status}", f"answers={len(event.answers)}"]
    parts.extend(f"{name}={_json(value)}" for name, value in event.scores.items())
    if event.bands:
        parts.append("bands=" + ",".join(f"{k}:{v}" for k, v in event.bands.items()))
    return " ".join(parts)


def render_event(event: Event) -> list[str]:
    """One engine event as transcript lines."""
    if isinstance(event, MessageOut):
        return _message(event)
    if isinstance(event, AnswerRecorded):
        return [f"= answer {event.item_id} {event.code or '-'} {_json(event.value)}"]
    if isinstance(event, SubjectChosen):
        return [f"# subject {event.patient_id}"]
    if isinstance(event, AlertRaised):
        head = f"! alert {event.rule_id} {event.severity}" + (" crisis" if event.crisis else "")
        return [head] + ([f"  message: {event.message}"] if event.message else [])
    if isinstance(event, SubmissionCompleted):
        return [_submission(event)]
    if isinstance(event, FlowEnded):
        return [f"# ended {event.reason}"]
    raise TypeError(f"unknown event {event!r}")


def render(conversation: Conversation, *, title: str = "") -> str:
    """A whole conversation as text: a blank line between turns."""
    blocks: list[str] = [f"## {title}"] if title else []
    for turn in conversation.turns:
        lines = [render_reply(turn.reply)] if turn.reply is not None else []
        for event in turn.events:
            lines.extend(render_event(event))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def transcript(script: Script) -> str:
    """The rendered transcript of a Script, with a header naming flow, language and setup."""
    title = f"{script.name}: {script.note}" if script.note else script.name
    return render(run_script(script), title=title)
