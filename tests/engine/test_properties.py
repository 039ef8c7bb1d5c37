"""Property tests: any reply, in any reachable state of any flow, never breaks the engine.

Hypothesis drives each shipped flow from its start with up to 30 random replies (unicode
text, numbers, option words, commands, buttons valid or not, and language switches), and
checks after every step: ``resume`` never raises; an active session always answers with
at least one message; an ended one answers nothing; the state is plain JSON. A second
property answers mostly validly (with SKIP, BACK and HELP) and checks that a flow that
ends does so once, with exactly one completed submission.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from c3n_bot.engine import prompts, runner
from c3n_bot.engine.definitions import Flow
from c3n_bot.engine.events import (
    ChoiceInput,
    Context,
    FlowEnded,
    Input,
    MessageOut,
    Step,
    Subject,
    SubmissionCompleted,
    TextInput,
)
from tests.engine.transcripts import FIXED_NOW, context, flow_ids, load_flow

MAX_STEPS = 30
ANA = Subject("patient-ana", "Ana")
LUIS = Subject("patient-luis", "Luis")
VALUES = {
    "center": "Riverside",
    "visit_time": "Thursday 10:30",
    "activity_title": "Workshop",
    "activity_time": "Saturday 11:00",
    "activity_place": "Room 4B",
}
WORDS = (
    "back", "BACK", "atrás", "help", "ayuda", "?", "¿?", "skip", "saltar", "/skip@bot",
    "prefer not to say", "yes", "no", "sí", "nope", "👍", "👎", "✅❌", "zero", "one", "two",
    "three", "ten", "twenty", "cero", "uno", "dos", "tres", "first", "tercera", "1st", "3-5",
    "0-2", "more than 8", "never", "nunca", "several days", "varios días", "so-so",
    "más o menos", "every dose", "Ana", "Luis", "ana luis", "maybe", "tal vez", "confirm",
    "reschedule", "", " ", "\n", "  3. ", "#2)", "-1", "999999999999", "1e9", "½", "٣",
    "x" * 2000, "😀" * 50, "\x00", "{child}", "{0}", "{", "%s", "today", "3/14/2026",
    "four", "cuatro", "40", "41", "lots", "not formed", "no formadas",
)  # fmt: skip


def contexts() -> st.SearchStrategy[Context]:
    """Who answers: language, patient or parent of one or two, with or without a history."""
    subjects = st.sampled_from([(), (ANA,), (ANA, LUIS)])
    previous: st.SearchStrategy[dict[str, int | None]] = st.one_of(
        st.just({}), st.fixed_dictionaries({"total": st.integers(-10, 100) | st.none()})
    )
    return st.builds(
        lambda lang, who, proxy, prev: context(
            lang, subjects=who, proxy=proxy, values=VALUES, previous_scores=prev
        ),
        st.sampled_from(["en", "es"]),
        subjects,
        st.booleans(),
        previous,
    )


ITEM_IDS = sorted({item.id for f in flow_ids() for item in load_flow(f).items})
CODES = sorted({o.code for f in flow_ids() for item in load_flow(f).items for o in item.options})
TYPED = st.one_of(
    st.text(max_size=120),
    st.sampled_from(WORDS),
    st.integers(-3, 100).map(str),
    st.builds(lambda a, b: f"{a} {b}", st.sampled_from(WORDS), st.sampled_from(WORDS)),
).map(TextInput)
ANY_BUTTON = st.builds(
    ChoiceInput,
    st.sampled_from([*ITEM_IDS, runner.SUBJECT, "nope"]),
    st.sampled_from([*CODES, "yes", "no", ANA.patient_id, LUIS.patient_id, "", "LA0000-0"]),
)


@dataclass(frozen=True)
class ValidButton:
    """A press of the n-th button of whatever is asked when the move is made."""

    n: int


@dataclass(frozen=True)
class SwitchLanguage:
    """The contact switches language (LANGUAGE): the host re-asks in the other one."""


# Drawn up front (one list per example) rather than step by step: much faster to generate.
# Valid buttons weigh as much as typed text, so that many runs reach the end of the flow.
VALID = st.builds(ValidButton, st.integers(0, 9))
MOVE = st.one_of(TYPED, TYPED, VALID, VALID, ANY_BUTTON, st.just(SwitchLanguage()))
# A length drawn first: plain st.lists mostly draws short lists, which rarely end a flow.
MOVES = st.integers(1, MAX_STEPS).flatmap(lambda n: st.lists(MOVE, min_size=n, max_size=n))


def valid_button(flow: Flow, state: dict[str, Any], ctx: Context, n: int) -> Input:
    """The n-th (modulo) button of the current question or choice of child."""
    item = runner.current_item(flow, state)
    if item is not None:
        valid = [ChoiceInput(c.item_id, c.code) for c in prompts.choices(flow, item, ctx)]
    else:
        valid = [ChoiceInput(runner.SUBJECT, s.patient_id) for s in ctx.subjects]
    return valid[n % len(valid)] if valid else TextInput(str(n))


def other_language(ctx: Context) -> Context:
    """The same contact, switched to the other language."""
    return context(
        "en" if ctx.lang == "es" else "es",
        subjects=ctx.subjects,
        proxy=ctx.proxy,
        values=ctx.values,
        previous_scores=ctx.previous_scores,
    )


def assert_plain_json(state: dict[str, Any]) -> None:
    """The state survives a strict JSON round trip unchanged."""
    assert json.loads(json.dumps(state, allow_nan=False)) == state


def has_message(step: Step) -> bool:
    """Whether a step sends the contact something."""
    return any(isinstance(event, MessageOut) and event.text.strip() for event in step.events)


@pytest.mark.parametrize("flow_id", flow_ids())
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ctx=contexts(), moves=MOVES)
def test_any_reply_in_any_state_gets_an_answer(
    flow_id: str, ctx: Context, moves: list[Any]
) -> None:
    """resume never raises; active sessions always reply; ended ones stay silent."""
    flow = load_flow(flow_id)
    step = runner.start(flow, ctx, FIXED_NOW)
    assert has_message(step)
    state = step.state
    assert_plain_json(state)
    for move in moves:
        active = state["ended"] is None
        if isinstance(move, SwitchLanguage):
            ctx = other_language(ctx)
            step = runner.reprompt(flow, state, ctx)
        else:
            reply = (
                valid_button(flow, state, ctx, move.n) if isinstance(move, ValidButton) else move
            )
            step = runner.resume(flow, state, reply, ctx, FIXED_NOW)
        assert has_message(step) if active else step.events == []
        state = step.state
        assert_plain_json(state)
    event(f"moves: {len(moves) // 10 * 10}+, ended: {state['ended'] is not None}")
    closing = runner.expire(flow, state, ctx, FIXED_NOW)
    assert closing.state["ended"] is not None
    assert_plain_json(closing.state)
    runner.stop(flow, state, ctx, FIXED_NOW)


ANSWERING = st.lists(
    st.one_of(VALID, VALID, VALID, VALID, st.sampled_from(["skip", "back", "help"]).map(TextInput)),
    min_size=60,
    max_size=60,
)


@pytest.mark.parametrize("flow_id", flow_ids())
@settings(max_examples=50, deadline=None)
@given(ctx=contexts(), moves=ANSWERING)
def test_answering_reaches_one_submission_and_one_end(
    flow_id: str, ctx: Context, moves: list[Any]
) -> None:
    """Mostly valid answers (with SKIP, BACK, HELP) end a flow with exactly one submission."""
    flow = load_flow(flow_id)
    step = runner.start(flow, ctx, FIXED_NOW)
    seen = list(step.events)
    state = step.state
    for move in moves:
        reply = valid_button(flow, state, ctx, move.n) if isinstance(move, ValidButton) else move
        step = runner.resume(flow, state, reply, ctx, FIXED_NOW)
        seen.extend(step.events)
        state = step.state
    event(f"ended: {state['ended'] is not None}")
    ends = [e for e in seen if isinstance(e, FlowEnded)]
    submissions = [e for e in seen if isinstance(e, SubmissionCompleted)]
    if state["ended"] is None:
        assert ends == [] and submissions == []
        return
    assert ends == [FlowEnded("completed")]
    assert len(submissions) == 1
    assert submissions[0].status == "completed"
    assert set(submissions[0].answers) <= {item.id for item in flow.questions()}
    assert json.loads(json.dumps(submissions[0].answers)) == submissions[0].answers
