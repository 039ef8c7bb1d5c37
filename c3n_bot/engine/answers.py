"""Reading one reply against the item being asked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from c3n_bot.engine import parsing
from c3n_bot.engine.definitions import Flow, Item, ItemType
from c3n_bot.engine.events import ChoiceInput, Context, Input, TextInput
from c3n_bot.engine.prompts import choices

MAX_TEXT = 1000


@dataclass(frozen=True)
class Answer:
    """A valid answer to the current item."""

    code: str | None
    value: Any
    display: str


def read_answer(
    flow: Flow, item: Item, reply: Input, ctx: Context, *, today: date
) -> Answer | None:
    """The answer a reply gives to the item, or None when it is not a valid one."""
    if isinstance(reply, ChoiceInput):
        return _from_choice(flow, item, reply.code, ctx)
    text = reply.text
    lang = ctx.lang
    if item.type == ItemType.CHOICE:
        labelled = [parsing.LabelledOption.from_option(o, ctx.translate) for o in item.options]
        code = parsing.match_option(text, labelled, numbering=flow.numbering, lang=lang)
        return _from_choice(flow, item, code, ctx) if code else None
    if item.type == ItemType.BOOLEAN:
        yes_no = parsing.parse_yes_no(text, lang)
        if yes_no is None:
            number = parsing.number_from_text(text, lang)
            yes_no = {1: True, 2: False}.get(number) if number is not None else None
        return None if yes_no is None else _from_choice(flow, item, "yes" if yes_no else "no", ctx)
    if item.type == ItemType.INTEGER:
        low = item.min if item.min is not None else 0
        high = item.max if item.max is not None else 999
        number = parsing.parse_integer(text, lang, low, high)
        return None if number is None else Answer(None, number, str(number))
    if item.type == ItemType.DATE:
        parsed = parsing.parse_date(text, lang, today=today)
        return None if parsed is None else Answer(None, parsed.isoformat(), parsed.isoformat())
    cleaned = text.strip()[:MAX_TEXT]
    return Answer(None, cleaned, cleaned) if cleaned else None


def _from_choice(flow: Flow, item: Item, code: str | None, ctx: Context) -> Answer | None:
    for choice in choices(flow, item, ctx):
        if choice.code == code:
            if item.type == ItemType.BOOLEAN:
                return Answer(code, code == "yes", choice.label)
            option = item.option(code)
            value = option.value if option and option.value is not None else code
            return Answer(code, value, choice.label)
    return None


def is_text(reply: Input) -> bool:
    """Whether the reply was typed (commands only apply to typed text)."""
    return isinstance(reply, TextInput)
