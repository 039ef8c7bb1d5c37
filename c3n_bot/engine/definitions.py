"""Flow definitions: immutable data loaded from YAML, one per flow file."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class FlowKind(enum.StrEnum):
    """What a flow is for; the host acts on a completed flow by its kind."""

    QUESTIONNAIRE = "questionnaire"
    REMINDER = "reminder"
    INVITATION = "invitation"
    CONSENT = "consent"


class ItemType(enum.StrEnum):
    """Question types; each maps to a FHIR R4 Questionnaire item type."""

    CHOICE = "choice"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    TEXT = "text"
    DATE = "date"
    DISPLAY = "display"


class Numbering(enum.StrEnum):
    """How options are numbered on text channels: by position (1..n) or by ordinal value."""

    POSITION = "position"
    VALUE = "value"


@dataclass(frozen=True)
class Coding:
    """A code in a code system (LOINC, or the network's local system)."""

    system: str
    code: str
    display: str | None = None


@dataclass(frozen=True)
class Option:
    """One answer of a choice item; `text` is the English source string."""

    code: str
    text: str
    value: int | None = None
    system: str | None = None
    # Further English words accepted for this option ("never" for "Not at all").
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class EnableWhen:
    """Ask an item only when an earlier answer meets a condition (FHIR enableWhen)."""

    question: str
    operator: str  # exists, =, !=, >, <, >=, <=
    answer: str | int | bool


@dataclass(frozen=True)
class Item:
    """One question (or a display text) of a flow."""

    id: str
    type: ItemType
    text: str
    proxy_text: str | None = None
    help: str | None = None
    code: Coding | None = None
    options: tuple[Option, ...] = ()
    required: bool = True
    min: int | None = None
    max: int | None = None
    enable_when: tuple[EnableWhen, ...] = ()
    enable_behavior: str = "all"

    def option(self, code: str) -> Option | None:
        """The option with this code, if any."""
        return next((o for o in self.options if o.code == code), None)


@dataclass(frozen=True)
class Band:
    """A named range of a score: min <= score <= max (max None means no upper bound)."""

    code: str
    label: str
    min: float
    max: float | None = None

    def contains(self, score: float) -> bool:
        """Whether a score falls in this band."""
        return score >= self.min and (self.max is None or score <= self.max)


@dataclass(frozen=True)
class Score:
    """A computed score: an expression over answers, with optional bands."""

    id: str
    label: str
    expr: str
    code: Coding | None = None
    bands: tuple[Band, ...] = ()

    def band(self, score: float | None) -> Band | None:
        """The band a score falls in."""
        if score is None:
            return None
        return next((b for b in self.bands if b.contains(score)), None)


@dataclass(frozen=True)
class AlertRule:
    """A condition over answers and scores that raises a care-team alert.

    An `immediate` rule is checked after every answer (a safety trigger cannot wait for
    the end of the questionnaire); `crisis` also sends the center's crisis resources.
    """

    id: str
    when: str
    severity: str  # urgent | review
    title: str
    immediate: bool = False
    crisis: bool = False
    message: str | None = None


@dataclass(frozen=True)
class Flow:
    """A whole flow: items, scoring, alerts and the texts around them."""

    id: str
    version: str
    kind: FlowKind
    title: str
    items: tuple[Item, ...]
    intro: str | None = None
    proxy_intro: str | None = None
    outro: str = "Thank you. Your answers have been sent to your care team."
    # A completion message naming the result, e.g. "Your score is {total} ({total_band})."
    result_message: str | None = None
    scores: tuple[Score, ...] = ()
    alerts: tuple[AlertRule, ...] = ()
    numbering: Numbering = Numbering.POSITION
    keywords: tuple[str, ...] = ()
    expires_after_hours: int = 72
    url: str | None = None
    code: Coding | None = None
    description: str | None = None
    source: str = field(default="", compare=False)

    def item(self, item_id: str) -> Item:
        """The item with this id (KeyError when absent)."""
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)

    def questions(self) -> tuple[Item, ...]:
        """Items that take an answer (not display texts)."""
        return tuple(i for i in self.items if i.type != ItemType.DISPLAY)
