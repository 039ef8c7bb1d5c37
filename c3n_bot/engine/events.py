"""What the engine takes in (inputs) and gives out (events); the host persists and sends."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any


@dataclass(frozen=True)
class TextInput:
    """Free text typed by the contact."""

    text: str


@dataclass(frozen=True)
class ChoiceInput:
    """A button pressed: the item it belonged to and the option code."""

    item_id: str
    code: str


Input = TextInput | ChoiceInput


@dataclass(frozen=True)
class Choice:
    """One option as a channel shows it: a button, or a number to type."""

    item_id: str
    code: str
    label: str
    number: str


@dataclass(frozen=True)
class MessageOut:
    """A message to the contact; `hint` says what to type on text channels."""

    text: str
    choices: tuple[Choice, ...] = ()
    hint: str | None = None
    # False on a re-prompt: text channels then skip the option list to stay short.
    show_options: bool = True


@dataclass(frozen=True)
class AnswerRecorded:
    """An item was answered (or cleared with value None after BACK)."""

    item_id: str
    code: str | None
    value: Any
    display: str | None


@dataclass(frozen=True)
class SubjectChosen:
    """A proxy said which child the report is for."""

    patient_id: str


@dataclass(frozen=True)
class AlertRaised:
    """An alert rule fired; `crisis` asks the host to send the center's crisis resources."""

    rule_id: str
    severity: str
    title: str
    crisis: bool
    # Words for the contact (translated), sent with the crisis resources when `crisis`.
    message: str | None = None


@dataclass(frozen=True)
class SubmissionCompleted:
    """The flow's result for the registry: completed, or closed early as partial/stopped."""

    status: str
    answers: dict[str, Any]
    scores: dict[str, Any]
    bands: dict[str, Any]


@dataclass(frozen=True)
class FlowEnded:
    """The session is over: completed, expired or stopped."""

    reason: str


Event = MessageOut | AnswerRecorded | SubjectChosen | AlertRaised | SubmissionCompleted | FlowEnded


@dataclass(frozen=True)
class Subject:
    """A patient a report may be about, as the contact knows them."""

    patient_id: str
    name: str


@dataclass(frozen=True)
class Context:
    """What the host knows that the engine needs: language, translator, who, history."""

    lang: str
    translate: Callable[[str], str] = field(default=lambda text: text)
    subjects: tuple[Subject, ...] = ()
    proxy: bool = False
    previous_scores: Mapping[str, Any] = field(default_factory=dict)
    today: date | None = None
    # Placeholders the flow's texts may use, e.g. {visit_time} in a visit reminder.
    values: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """The engine's answer: the new state (plain JSON data) and the events."""

    state: dict[str, Any]
    events: list[Event]
