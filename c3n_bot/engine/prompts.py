"""How a question becomes a message: translated text, progress, choices and a reply hint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from c3n_bot.engine import messages
from c3n_bot.engine.definitions import Flow, Item, ItemType, Numbering
from c3n_bot.engine.events import Choice, Context, MessageOut
from c3n_bot.engine.scoring import is_enabled


class _Blank(dict[str, str]):
    # A placeholder with no value renders empty rather than failing the whole message.
    def __missing__(self, key: str) -> str:
        return ""


def fill(template: str, values: Mapping[str, Any]) -> str:
    """Substitute {name} placeholders; unknown names become empty."""
    try:
        return template.format_map(_Blank({k: str(v) for k, v in values.items()}))
    except (ValueError, IndexError):
        return template


def item_text(item: Item, ctx: Context, state: Mapping[str, Any]) -> str:
    """The item's wording in the contact's language, proxy wording for a parent."""
    source = item.proxy_text if ctx.proxy and item.proxy_text else item.text
    return fill(ctx.translate(source), placeholders(ctx, state))


def placeholders(ctx: Context, state: Mapping[str, Any]) -> dict[str, Any]:
    """Values for {name} placeholders: the child's name and the host's values."""
    subject = state.get("subject") or {}
    name = subject.get("name") or ctx.values.get("child", "")
    return {**ctx.values, "child": name}


def choices(flow: Flow, item: Item, ctx: Context) -> tuple[Choice, ...]:
    """The item's options as buttons or numbers to type."""
    if item.type == ItemType.BOOLEAN:
        return (
            Choice(item.id, "yes", ctx.translate(messages.YES), "1"),
            Choice(item.id, "no", ctx.translate(messages.NO), "2"),
        )
    result = []
    for index, option in enumerate(item.options):
        by_value = flow.numbering == Numbering.VALUE and option.value is not None
        number = str(option.value) if by_value else str(index + 1)
        result.append(Choice(item.id, option.code, ctx.translate(option.text), number))
    return tuple(result)


def hint(flow: Flow, item: Item, ctx: Context) -> str | None:
    """What a text channel should tell the contact to type."""
    tr = ctx.translate
    if item.type in (ItemType.CHOICE, ItemType.BOOLEAN):
        numbers = [c.number for c in choices(flow, item, ctx)]
        if item.type == ItemType.BOOLEAN:
            return tr(messages.REPLY_YES_NO)
        return fill(tr(messages.REPLY_RANGE), {"first": numbers[0], "last": numbers[-1]})
    if item.type == ItemType.INTEGER:
        low = item.min if item.min is not None else 0
        high = item.max if item.max is not None else 999
        return fill(tr(messages.REPLY_NUMBER), {"min": low, "max": high})
    if item.type == ItemType.DATE:
        return fill(tr(messages.REPLY_DATE), {"example": tr(messages.DATE_EXAMPLE)})
    if item.type == ItemType.TEXT:
        return tr(messages.REPLY_TEXT)
    return None


def progress(flow: Flow, item: Item, state: Mapping[str, Any], ctx: Context) -> str:
    """'(3 of 9)': this question's place among those that will be asked."""
    answers = state.get("answers", {})
    settled = set(state.get("path", []))
    # A conditional question counts while its conditions still depend on unanswered items.
    asked = [
        i
        for i in flow.questions()
        if is_enabled(i, answers) or any(c.question not in settled for c in i.enable_when)
    ]
    if len(asked) < 2 or item not in asked:
        return ""
    return fill(ctx.translate(messages.PROGRESS), {"n": asked.index(item) + 1, "total": len(asked)})


def question(
    flow: Flow,
    item: Item,
    ctx: Context,
    state: Mapping[str, Any],
    *,
    prefix: str = "",
    full: bool = False,
) -> MessageOut:
    """The message asking an item (or showing a display item)."""
    text = item_text(item, ctx, state)
    if item.type == ItemType.DISPLAY:
        return MessageOut(text=f"{prefix}{text}")
    counter = progress(flow, item, state, ctx)
    body = f"{prefix}{counter} {text}".strip() if counter else f"{prefix}{text}"
    # `full` (asked again, or in another language) always lists the scale.
    follow_on = not full and _same_options_as_before(flow, item, state)
    # After the scale was listed once, the next questions on it stay short on text channels.
    return MessageOut(
        text=body,
        choices=choices(flow, item, ctx),
        hint=None if follow_on else hint(flow, item, ctx),
        show_options=not follow_on,
    )


def _same_options_as_before(flow: Flow, item: Item, state: Mapping[str, Any]) -> bool:
    # A scale listed once (as on the paper form) need not be repeated on every text message.
    path = state.get("path", [])
    if not path or not item.options:
        return False
    previous = flow.item(path[-1])
    return previous.options == item.options


def reprompt(flow: Flow, item: Item, ctx: Context, lead: str) -> MessageOut:
    """A short 'didn't get that' with what is accepted, without the whole option list."""
    accepted = hint(flow, item, ctx) or ""
    text = f"{lead} {accepted}.".strip() if accepted else lead
    return MessageOut(text=text, choices=choices(flow, item, ctx), hint=None, show_options=False)


def help_message(flow: Flow, item: Item, ctx: Context) -> MessageOut:
    """What each answer means and which commands work here."""
    tr = ctx.translate
    lines = []
    if item.help:
        lines.append(tr(item.help))
    if item.type in (ItemType.CHOICE, ItemType.BOOLEAN):
        lines.append(tr(messages.HELP_OPTIONS))
        lines.extend(f"{c.number} = {c.label}" for c in choices(flow, item, ctx))
    else:
        lines.append(hint(flow, item, ctx) or "")
    if len(flow.questions()) > 1:
        commands = messages.HELP_COMMANDS if not item.required else messages.HELP_COMMANDS_REQUIRED
        lines.append(tr(commands))
    return MessageOut(
        text="\n".join(line for line in lines if line),
        choices=choices(flow, item, ctx),
        show_options=False,
    )
