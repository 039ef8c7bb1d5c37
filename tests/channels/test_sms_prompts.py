"""Every SMS prompt of every shipped flow fits its segment budget.

Each shipped flow is driven through the pure engine in English and Spanish, as a patient
(self) and as a parent reporting for one of two children (proxy): the start, every item with
a valid answer, and at every item the messages a contact can also get there -- HELP, the
first "didn't understand" re-prompt, the third one ("stuck"), SKIP (or its refusal), BACK and
the reminder nudge. Each MessageOut is rendered exactly as the SMS channel sends it:
``sms_body(render_text(body, payload))`` with the payload the outbox stores.

The SMS channel sends a text over budget as several SMS (``split_for_sms``, at line breaks), so
the budget applies to each part: English stays GSM-7 (never UCS-2 by accident) and each part
is at most 2 segments; in Spanish each part is at most 3 segments (UCS-2 is expected there:
"á", "í", "ó", "ú" are not in GSM-7). No message may need more than 2 parts.

Messages known to be over are listed in ``KNOWN_OVER`` and marked ``xfail(strict=True)``,
so the suite stays green until rendering is fixed and then fails until the entry is removed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any

import pytest

from c3n_bot.channels.sms_encoding import SegmentInfo, non_gsm7, segments, sms_body
from c3n_bot.channels.sms_split import split_for_sms
from c3n_bot.channels.text import render_text
from c3n_bot.config import data_dir
from c3n_bot.engine import runner
from c3n_bot.engine.definitions import Flow, Item, ItemType
from c3n_bot.engine.events import (
    AnswerRecorded,
    Context,
    MessageOut,
    Step,
    Subject,
    TextInput,
)
from c3n_bot.engine.loader import parse_flow
from c3n_bot.engine.prompts import choices
from c3n_bot.i18n import shipped_catalogs

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
LANGUAGES = ("en", "es")
MAX_SEGMENTS = {"en": 2, "es": 3}
MAX_PARTS = 2

# What the host puts into a Context, at realistic lengths (see service.sessions).
VALUES: dict[str, dict[str, str]] = {
    "en": {
        "program": "Riverside IBD Network",
        "center": "Riverside Children's Hospital",
        "visit_time": "Mon Mar 9, 9:00 AM",
        "activity_title": "Help us design the new check-in questions",
        "activity_time": "Sat Mar 14, 11:00 AM",
        "activity_place": "Riverside Children's Hospital, room 4B, or online",
    },
    "es": {
        "program": "Riverside IBD Network",
        "center": "Riverside Children's Hospital",
        "visit_time": "lun 9 mar, 9:00",
        "activity_title": "Ayúdenos a diseñar las nuevas preguntas del control",
        "activity_time": "sáb 14 mar, 11:00",
        "activity_place": "Riverside Children's Hospital, sala 4B, o en línea",
    },
}
# The patient (self-report) and two children of a parent (proxy); GSM-7 names, so a name is
# never what pushes an English prompt into UCS-2.
PATIENT = Subject("patient-maya", "Maya")
CHILDREN = (Subject("patient-valentina", "Valentina"), Subject("patient-alexander", "Alexander"))

WORDS = {
    "en": {"help": "help", "skip": "skip", "back": "back", "text": "All good this week"},
    "es": {"help": "ayuda", "skip": "saltar", "back": "atrás", "text": "Todo bien esta semana"},
}
NONSENSE = "zzz"

# Prompt id -> parts and their units: cause; fix. Each is xfail(strict=True), so a fix that
# makes one fit fails the suite until its entry is removed here.
KNOWN_OVER: dict[str, str] = {}


@dataclass(frozen=True)
class Prompt:
    """One message as SMS sends it, and where in which flow it was produced."""

    flow: str
    lang: str
    variant: str
    where: str
    text: str

    @property
    def id(self) -> str:
        """A stable test id: flow-lang-variant-where."""
        return f"{self.flow}-{self.lang}-{self.variant}-{self.where}"


def flow_ids() -> list[str]:
    """Every shipped flow (file stem of flows/*.yaml)."""
    return sorted(path.stem for path in data_dir("flows").glob("*.yaml"))


@cache
def load_flow(flow_id: str) -> Flow:
    """A shipped flow, parsed."""
    path = data_dir("flows") / f"{flow_id}.yaml"
    return parse_flow(path.read_text("utf-8"), str(path))


def sms_text(message: MessageOut) -> str:
    """The SMS body for a message: the outbox payload rendered, then `sms_body`."""
    payload: Mapping[str, Any] = {
        "choices": [asdict(choice) for choice in message.choices],
        "hint": message.hint,
        "show_options": message.show_options,
    }
    return sms_body(render_text(message.text, payload))


def _context(lang: str, *, proxy: bool) -> Context:
    return Context(
        lang=lang,
        translate=shipped_catalogs().translator(lang),
        subjects=CHILDREN if proxy else (PATIENT,),
        proxy=proxy,
        today=NOW.date(),
        values=VALUES[lang],
    )


def _messages(step: Step) -> list[MessageOut]:
    return [event for event in step.events if isinstance(event, MessageOut)]


def _answered(step: Step, item: Item) -> bool:
    return any(isinstance(e, AnswerRecorded) and e.item_id == item.id for e in step.events)


def _label(where: str, messages: list[MessageOut]) -> Iterator[tuple[str, MessageOut]]:
    for index, message in enumerate(messages):
        yield (where if len(messages) == 1 else f"{where}.{index + 1}"), message


def valid_answer(flow: Flow, item: Item, ctx: Context) -> str:
    """A typed answer the item accepts; the second option, so PHQ-9 reaches its item 10."""
    if item.type in (ItemType.CHOICE, ItemType.BOOLEAN):
        options = choices(flow, item, ctx)
        return options[1 if len(options) > 1 else 0].number
    if item.type == ItemType.INTEGER:
        return str(item.max if item.max is not None else item.min or 0)
    if item.type == ItemType.DATE:
        return "3/14/2026"
    return WORDS[ctx.lang]["text"]


def _after(flow: Flow, step: Step, item: Item, command: str) -> str:
    # SKIP and BACK answer with another item's question: name the message after that item.
    shown = runner.current_item(flow, step.state)
    if shown is None:
        return f"end.after_{command}"
    if shown.id == item.id:
        return f"{item.id}.{command}_refused" if command == "skip" else f"{item.id}.back_at_first"
    return f"{shown.id}.after_{command}"


def _probes(
    flow: Flow, state: dict[str, Any], item: Item, ctx: Context
) -> Iterator[tuple[str, MessageOut]]:
    """What a contact can get while `item` is asked, besides the question itself."""
    words = WORDS[ctx.lang]

    def reply(current: dict[str, Any], text: str) -> Step:
        return runner.resume(flow, current, TextInput(text), ctx, NOW)

    yield from _label(f"{item.id}.help", _messages(reply(state, words["help"])))
    invalid = reply(state, NONSENSE)
    if not _answered(invalid, item):  # free text accepts anything
        yield from _label(f"{item.id}.invalid", _messages(invalid))
        stuck = invalid
        for _ in range(runner.MAX_INVALID - 1):  # the last of these says "seems hard"
            stuck = reply(stuck.state, NONSENSE)
        yield from _label(f"{item.id}.stuck", _messages(stuck))
    skipped = reply(state, words["skip"])
    yield from _label(_after(flow, skipped, item, "skip"), _messages(skipped))
    back = reply(state, words["back"])
    yield from _label(_after(flow, back, item, "back"), _messages(back))
    yield from _label(f"{item.id}.nudge", _messages(runner.reprompt(flow, state, ctx, nudge=True)))


def conversation(flow: Flow, lang: str, *, proxy: bool) -> Iterator[tuple[str, MessageOut]]:
    """Every message of one run through `flow`, labelled by where it was produced."""
    ctx = _context(lang, proxy=proxy)
    step = runner.start(flow, ctx, NOW)
    if step.state["awaiting"] == runner.SUBJECT:
        yield from _label("who_for", _messages(step))
        yield from _label(
            "who_for.invalid",
            _messages(runner.resume(flow, step.state, TextInput(NONSENSE), ctx, NOW)),
        )
        step = runner.resume(flow, step.state, TextInput("1"), ctx, NOW)
    where = "start"
    for _ in range(len(flow.items) + 1):
        item = runner.current_item(flow, step.state)
        messages = _messages(step)
        if item is None:
            yield from _label(f"{where}.end", messages)
            assert step.state["ended"], f"{flow.id}: stopped at {step.state['awaiting']}"
            return
        lead = f"{where}.lead" if where == "start" else f"{where}.before_{item.id}"
        yield from _label(lead, messages[:-1])
        yield f"{item.id}.ask", messages[-1]
        yield from _probes(flow, step.state, item, ctx)
        step = runner.resume(flow, step.state, TextInput(valid_answer(flow, item, ctx)), ctx, NOW)
        assert _answered(step, item), f"{flow.id} {lang}: {item.id} refused its valid answer"
        where = item.id
    raise AssertionError(f"{flow.id} {lang}: the run did not end")


@lru_cache(maxsize=1)
def all_prompts() -> tuple[Prompt, ...]:
    """Every distinct SMS text of every flow, language and variant (first occurrence kept)."""
    found: dict[tuple[str, str, str], Prompt] = {}
    for flow_id in flow_ids():
        flow = load_flow(flow_id)
        for lang in LANGUAGES:
            for variant in ("self", "proxy"):
                for where, message in conversation(flow, lang, proxy=variant == "proxy"):
                    text = sms_text(message)
                    prompt = Prompt(flow_id, lang, variant, where, text)
                    found.setdefault((flow_id, lang, text), prompt)
    prompts = tuple(found.values())
    ids = [prompt.id for prompt in prompts]
    assert len(ids) == len(set(ids)), "two different messages share an id"
    return prompts


def describe(prompt: Prompt, part: str, info: SegmentInfo, parts: int) -> str:
    """A failure message naming flow, language, item, the part's segments and the text."""
    unit = "septets" if info.encoding == "GSM-7" else "UTF-16 units"
    forced = f"; not GSM-7: {non_gsm7(part)!r}" if info.encoding == "UCS-2" else ""
    return (
        f"flow={prompt.flow} lang={prompt.lang} variant={prompt.variant} at={prompt.where}: "
        f"a part of {parts}: {info.segments} segments ({info.encoding}, {info.units} {unit}; "
        f"max {MAX_SEGMENTS[prompt.lang]}{forced})\n"
        f"---\n{part}\n---"
    )


def _params() -> list[Any]:
    return [
        pytest.param(
            prompt,
            id=prompt.id,
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN_OVER[prompt.id])]
            if prompt.id in KNOWN_OVER
            else [],
        )
        for prompt in all_prompts()
    ]


@pytest.mark.parametrize("prompt", _params())
def test_sms_prompt_fits_its_segment_budget(prompt: Prompt) -> None:
    parts = split_for_sms(prompt.text)
    if prompt.lang == "en":
        whole = segments(prompt.text)
        assert whole.encoding == "GSM-7", describe(prompt, prompt.text, whole, len(parts))
    for part in parts:
        info = segments(part)
        if prompt.lang == "en":
            assert info.encoding == "GSM-7", describe(prompt, part, info, len(parts))
        assert info.segments <= MAX_SEGMENTS[prompt.lang], describe(prompt, part, info, len(parts))
    assert len(parts) <= MAX_PARTS, (
        f"{prompt.id}: split into {len(parts)} SMS (max {MAX_PARTS}):\n" + "\n---\n".join(parts)
    )


def test_every_item_of_every_flow_is_asked_in_both_languages() -> None:
    asked = {(p.flow, p.lang, p.where) for p in all_prompts()}
    for flow_id in flow_ids():
        flow = load_flow(flow_id)
        for lang in LANGUAGES:
            for item in flow.questions():
                # Identical texts are kept once, so the question may be a self or proxy one.
                labels = {f"{item.id}.ask", f"{item.id}.help", f"{item.id}.after_skip"}
                assert any((flow_id, lang, label) in asked for label in labels), (
                    f"{flow_id} {lang}: {item.id} never asked"
                )


def test_proxy_wording_is_covered() -> None:
    proxy = [p for p in all_prompts() if p.variant == "proxy"]
    assert any("Valentina" in p.text for p in proxy)
    assert any(p.where == "who_for" for p in proxy)


def test_known_over_names_only_existing_prompts() -> None:
    ids = {prompt.id for prompt in all_prompts()}
    assert sorted(set(KNOWN_OVER) - ids) == []
