"""The runner's conversation rules: BACK, invalid replies, stale buttons, expiry, languages.

The last section pins engine bugs found while writing these tests. Those marked
``xfail(strict=True)`` are still open: each passes once the bug is fixed, and the strict
marker then asks for the marker to be removed.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

import pytest

from c3n_bot.engine import messages, runner
from c3n_bot.engine.definitions import Flow
from c3n_bot.engine.events import (
    AnswerRecorded,
    ChoiceInput,
    Context,
    Event,
    FlowEnded,
    MessageOut,
    Step,
    Subject,
    SubjectChosen,
    SubmissionCompleted,
)
from tests.engine.transcripts import (
    FIXED_NOW,
    Reply,
    as_input,
    choice,
    context,
    load_flow,
)

EN = context("en")
ANA = Subject("patient-ana", "Ana")
LUIS = Subject("patient-luis", "Luis")


def start(flow_id: str, ctx: Context = EN) -> tuple[Flow, dict[str, Any]]:
    """A flow and the state right after its start."""
    flow = load_flow(flow_id)
    return flow, runner.start(flow, ctx, FIXED_NOW).state


def send(flow: Flow, state: dict[str, Any], reply: Reply, ctx: Context = EN) -> Step:
    """One reply through the engine."""
    return runner.resume(flow, state, as_input(reply), ctx, FIXED_NOW)


def send_all(
    flow: Flow, state: dict[str, Any], replies: Sequence[Reply], ctx: Context = EN
) -> Step:
    """Several replies in turn; the last step."""
    step = Step(state, [])
    for reply in replies:
        step = send(flow, step.state, reply, ctx)
    return step


def texts(events: Sequence[Event]) -> list[str]:
    """The texts of the messages among events."""
    return [e.text for e in events if isinstance(e, MessageOut)]


def only_message(step: Step) -> MessageOut:
    """The single event of a step, which must be a message."""
    assert len(step.events) == 1, step.events
    message = step.events[0]
    assert isinstance(message, MessageOut)
    return message


# -- BACK -----------------------------------------------------------------------------------


def test_back_at_the_first_question_says_it_is_the_first() -> None:
    """BACK with nothing answered re-asks the first question, saying so; nothing changes."""
    flow, state = start("phq9")
    step = send(flow, state, "back")
    message = only_message(step)
    assert message.text.startswith(messages.FIRST_QUESTION + "\n")
    assert flow.item("q1").text in message.text
    assert step.state["awaiting"] == "q1"
    assert step.state["answers"] == {}


def test_back_clears_the_previous_answer_and_asks_it_again() -> None:
    """BACK records a cleared answer, forgets it and asks that question again."""
    flow, state = start("phq9")
    state = send(flow, state, "2").state
    step = send(flow, state, "back")
    assert step.events[0] == AnswerRecorded("q1", None, None, None)
    assert texts(step.events) == [f"(1 of 10) {flow.item('q1').text}"]
    assert step.state["answers"] == {}
    assert step.state["path"] == []
    assert step.state["awaiting"] == "q1"
    again = send(flow, step.state, "0")
    assert again.state["answers"]["q1"]["value"] == 0
    assert again.state["awaiting"] == "q2"


def test_back_after_skip_asks_the_skipped_question_again() -> None:
    """A skipped item is no longer skipped once BACK reopens it."""
    flow, state = start("gad7")
    step = send_all(flow, state, ["1", "skip", "back"])
    assert step.state["skipped"] == []
    assert step.state["awaiting"] == "q2"


def test_back_at_the_first_question_of_a_proxy_report_keeps_the_child() -> None:
    """BACK on the first question does not reopen the choice of child."""
    ctx = context("en", subjects=(ANA, LUIS), proxy=True)
    flow, state = start("ibd_checkin", ctx)
    step = send_all(flow, state, ["Luis", "back"], ctx)
    assert step.state["subject"] == {"id": LUIS.patient_id, "name": "Luis"}
    assert texts(step.events)[0].startswith(messages.FIRST_QUESTION)


# -- invalid replies ------------------------------------------------------------------------

STUCK = (
    "This question seems hard to answer here. Reply HELP to see what each answer means, "
    "or SKIP to leave it blank."
)
STUCK_REQUIRED = "This question seems hard to answer here. Reply HELP to see the answers."


def test_three_invalid_replies_offer_help_or_skip() -> None:
    """The third invalid reply in a row offers HELP and SKIP instead of repeating itself."""
    flow, state = start("phq9")
    first = send(flow, state, "blah")
    assert only_message(first).text == "Sorry, I didn't understand that. Reply 0-3."
    assert only_message(first).show_options is False
    second = send(flow, first.state, "meh")
    assert only_message(second).text == "Sorry, I didn't understand that. Reply 0-3."
    third = send(flow, second.state, "what")
    assert only_message(third).text == STUCK
    assert [c.code for c in only_message(third).choices] == [
        o.code for o in flow.item("q1").options
    ]
    # The count starts again: a fourth invalid reply gets the short re-prompt.
    fourth = send(flow, third.state, "hmm")
    assert only_message(fourth).text.startswith("Sorry, I didn't understand that.")
    assert fourth.state["awaiting"] == "q1"


def test_three_invalid_replies_on_a_required_item_offer_only_help() -> None:
    """A required item cannot be skipped, so SKIP is not offered."""
    flow, state = start("pucai")
    step = send_all(flow, state, ["blah", "meh", "what"])
    text = only_message(step).text
    assert text == STUCK_REQUIRED
    assert "SKIP" not in text


def test_three_invalid_replies_in_spanish() -> None:
    """The stuck message is translated."""
    es = context("es")
    flow, state = start("pucai", es)
    step = send_all(flow, state, ["bla", "eh", "qué"], es)
    assert only_message(step).text.startswith("Parece difícil responder esta pregunta")
    assert "AYUDA" in only_message(step).text


@pytest.mark.parametrize("between", ["1", "help", ChoiceInput("q1", "LA6568-5")])
def test_an_answer_or_command_resets_the_invalid_count(between: Reply) -> None:
    """Only invalid replies in a row count: an answer or a command starts the count again."""
    flow, state = start("phq9")
    step = send_all(flow, state, ["blah", "meh", between, "what"])
    assert only_message(step).text.startswith("Sorry, I didn't understand that.")


def test_skip_on_a_required_item_is_refused() -> None:
    """SKIP on a required item says it needs an answer and re-asks nothing else."""
    flow, state = start("pucai")
    step = send(flow, state, "skip")
    assert only_message(step).text == "This question needs an answer. Reply 1-3."
    assert step.state["awaiting"] == "pain"
    assert step.state["skipped"] == []


def test_help_explains_the_options_and_the_commands() -> None:
    """HELP lists each option with its number, and says which commands work here."""
    flow, state = start("pucai")
    state = send(flow, state, "1").state
    message = only_message(send(flow, state, "?"))
    assert message.text.splitlines() == [
        "Reply with the number or the words:",
        "1 = None",
        "2 = Small amount only, in less than 50% of stools",
        "3 = Small amount with most stools",
        "4 = Large amount (more than 50% of the stool content)",
        "BACK: change the last answer.",
    ]


def test_help_on_a_count_says_what_to_type() -> None:
    """HELP on a number question gives the item's help and the accepted range."""
    flow, state = start("pucai")
    state = send_all(flow, state, ["1", "1", "1"]).state
    message = only_message(send(flow, state, "?"))
    assert message.text.splitlines() == [
        "Count every bowel movement in a day and night.",
        "Reply with a number from 0 to 40",
        "BACK: change the last answer.",
    ]


# -- buttons --------------------------------------------------------------------------------


def test_a_stale_button_asks_the_current_question_again() -> None:
    """A button of an earlier question changes nothing and re-asks the current one."""
    flow, state = start("phq9")
    state = send_all(flow, state, ["1", "2"]).state
    step = send(flow, state, ChoiceInput("q1", "LA6571-9"))
    message = only_message(step)
    assert message.text == (f"{messages.STALE_BUTTON}\n(3 of 10) {flow.item('q3').text}")
    assert step.state == state


def test_a_button_of_the_current_question_answers_it() -> None:
    """A current button records its option, whatever the channel numbering."""
    flow, state = start("phq9")
    step = send(flow, state, ChoiceInput("q1", "LA6570-1"))
    assert step.events[0] == AnswerRecorded("q1", "LA6570-1", 2, "More than half the days")


def test_a_button_with_an_unknown_code_is_an_invalid_reply() -> None:
    """A forged or outdated option code is not an answer."""
    flow, state = start("phq9")
    step = send(flow, state, ChoiceInput("q1", "LA0000-0"))
    assert only_message(step).text.startswith("Sorry, I didn't understand that.")
    assert step.state["answers"] == {}


# -- expiry and stop ------------------------------------------------------------------------


def test_expire_with_answers_closes_as_partial() -> None:
    """A session left with answers gives a partial submission, then ends as expired."""
    flow, state = start("phq9")
    state = send_all(flow, state, ["1", "2", "skip"]).state
    step = runner.expire(flow, state, EN, FIXED_NOW)
    assert [type(e) for e in step.events] == [SubmissionCompleted, FlowEnded]
    submission, ended = step.events
    assert isinstance(submission, SubmissionCompleted)
    assert submission.status == "partial"
    assert set(submission.answers) == {"q1", "q2"}
    assert submission.scores == {"total": None}
    assert ended == FlowEnded("expired")
    assert step.state["ended"] == FIXED_NOW.isoformat()
    assert step.state["awaiting"] is None


def test_expire_without_answers_only_ends() -> None:
    """Nothing answered: no submission, only the end."""
    flow, state = start("phq9")
    assert runner.expire(flow, state, EN, FIXED_NOW).events == [FlowEnded("expired")]


def test_expire_while_choosing_the_child_only_ends() -> None:
    """A proxy who never said which child: no submission."""
    ctx = context("en", subjects=(ANA, LUIS), proxy=True)
    flow, state = start("ibd_checkin", ctx)
    assert runner.expire(flow, state, ctx, FIXED_NOW).events == [FlowEnded("expired")]


def test_stop_closes_as_stopped() -> None:
    """STOP mid-way keeps the answers as a stopped submission."""
    flow, state = start("gad7")
    state = send(flow, state, "3").state
    step = runner.stop(flow, state, EN, FIXED_NOW)
    assert [type(e) for e in step.events] == [SubmissionCompleted, FlowEnded]
    submission = step.events[0]
    assert isinstance(submission, SubmissionCompleted)
    assert submission.status == "stopped"
    assert step.events[1] == FlowEnded("stopped")
    assert runner.stop(flow, start("gad7")[1], EN, FIXED_NOW).events == [FlowEnded("stopped")]


def test_an_ended_session_takes_nothing_more() -> None:
    """After the end: no events from resume, reprompt, expire or stop."""
    flow, state = start("codesign_invite", context("en", values={"activity_title": "x"}))
    ended = send(flow, state, "yes").state
    assert ended["ended"] is not None
    assert send(flow, ended, "hello").events == []
    assert runner.reprompt(flow, ended, EN).events == []
    assert runner.expire(flow, ended, EN, FIXED_NOW).events == []
    assert runner.stop(flow, ended, EN, FIXED_NOW).events == []


# -- languages ------------------------------------------------------------------------------


def test_reprompt_in_another_language_asks_again_in_spanish() -> None:
    """After LANGUAGE, the current question is asked again in Spanish, and read in Spanish."""
    flow, state = start("phq9")
    state = send(flow, state, "1").state
    es = context("es")
    step = runner.reprompt(flow, state, es)
    message = only_message(step)
    assert message.text == "(2 de 10) Se ha sentido decaído(a), deprimido(a), o sin esperanzas"
    assert [c.label for c in message.choices][0] == "Ningún día"
    # Asked again in a new language, the scale is listed in full, with the hint.
    assert message.hint == "Responda 0-3"
    assert message.show_options is True
    assert step.state["lang"] == "es"
    assert step.state["answers"] == state["answers"]
    answered = send(flow, step.state, "casi todos los días", es)
    assert answered.state["answers"]["q2"]["value"] == 3


def test_reprompt_as_a_nudge() -> None:
    """A nudge says we are still waiting, then asks the question again."""
    flow, state = start("gad7")
    message = only_message(runner.reprompt(flow, state, EN, nudge=True))
    assert message.text.startswith(messages.NUDGE + "\n(1 of 7) ")


# -- enableWhen, progress, option lists -----------------------------------------------------


def phq9_values(values: Sequence[int]) -> list[Reply]:
    """Buttons answering PHQ-9 items 1-9 with these values."""
    flow = load_flow("phq9")
    return [choice(flow, f"q{n}", v) for n, v in enumerate(values, start=1)]


def test_phq9_q10_is_not_asked_when_every_item_is_zero() -> None:
    """Item 10 is asked only 'if you checked off any problems'."""
    flow, state = start("phq9")
    step = send_all(flow, state, phq9_values([0] * 9))
    assert step.state["ended"] is not None
    submission = next(e for e in step.events if isinstance(e, SubmissionCompleted))
    assert "q10" not in submission.answers
    assert submission.scores == {"total": 0}


@pytest.mark.parametrize("which", range(9))
def test_phq9_q10_is_asked_when_any_item_is_above_zero(which: int) -> None:
    """Any of items 1-9 above 0 enables item 10."""
    values = [0] * 9
    values[which] = 1
    flow, state = start("phq9")
    step = send_all(flow, state, phq9_values(values))
    assert step.state["awaiting"] == "q10"
    assert texts(step.events)[-1].startswith("(10 of 10) If you checked off any problems")


def test_phq9_q10_is_dropped_when_back_changes_the_only_problem_to_zero() -> None:
    """Changing q9 from 1 to 0 with BACK disables q10 again, and the flow completes."""
    flow, state = start("phq9")
    state = send_all(flow, state, phq9_values([0] * 8 + [1])).state
    assert state["awaiting"] == "q10"
    state = send(flow, state, "back").state
    assert state["awaiting"] == "q9"
    step = send(flow, state, "0")
    assert step.state["ended"] is not None
    assert "q10" not in step.state["answers"]


@pytest.mark.parametrize(
    ("flow_id", "answered", "expected"),
    [
        ("gad7", 2, "(3 of 7)"),
        ("pucai", 2, "(3 of 6)"),
        ("consent", 2, "(3 of 4)"),
        # q10 counts while any of items 1-9 is still open, so PHQ-9 reads "of 10" until q9.
        ("phq9", 2, "(3 of 10)"),
        ("phq9", 8, "(9 of 10)"),
    ],
)
def test_progress(flow_id: str, answered: int, expected: str) -> None:
    """'(n of total)' names this question's place among those that will be asked."""
    flow, state = start(flow_id, context("en", values={"center": "C"}))
    step = send_all(flow, state, ["1"] * answered)
    assert texts(step.events)[-1].startswith(expected + " ")


def test_progress_total_drops_q10_once_it_cannot_be_asked() -> None:
    """PHQ-9 answered all zeros: the total falls to 9 once nothing can enable q10."""
    flow = load_flow("phq9")
    state = send_all(flow, runner.start(flow, EN, FIXED_NOW).state, phq9_values([0] * 8)).state
    # Re-asking q9 (a reprompt) with q1-q8 all 0: q10 still depends on q9.
    assert only_message(runner.reprompt(flow, state, EN)).text.startswith("(9 of 10)")


def test_options_are_shown_once_per_scale() -> None:
    """PHQ-9 lists its scale on q1, not again on q2 (same scale), and again on q10."""
    flow, state = start("phq9")
    first = runner.start(flow, EN, FIXED_NOW).events[-1]
    assert isinstance(first, MessageOut)
    assert first.show_options is True
    second = send(flow, state, "1").events[-1]
    assert isinstance(second, MessageOut)
    assert second.show_options is False
    assert len(second.choices) == 4  # buttons are still sent; text channels skip the list
    tenth = send_all(flow, state, phq9_values([1] * 9)).events[-1]
    assert isinstance(tenth, MessageOut)
    assert tenth.show_options is True
    assert [c.label for c in tenth.choices][0] == "Not difficult at all"


def test_pucai_shows_every_option_list() -> None:
    """Items with different options always list them."""
    flow, state = start("pucai")
    step = send(flow, state, "1")
    message = step.events[-1]
    assert isinstance(message, MessageOut)
    assert message.show_options is True


# -- proxies --------------------------------------------------------------------------------


def test_a_parent_of_two_children_is_asked_who_the_report_is_for() -> None:
    """Two subjects: the first message asks which child, by name or number."""
    ctx = context("en", subjects=(ANA, LUIS), proxy=True)
    flow = load_flow("ibd_checkin")
    started = runner.start(flow, ctx, FIXED_NOW)
    message = only_message(started)
    assert message.text == "Who is this report for?"
    assert [(c.number, c.label) for c in message.choices] == [("1", "Ana"), ("2", "Luis")]
    for reply in ("luis", "LUIS 🙂", "2", "two", ChoiceInput(runner.SUBJECT, LUIS.patient_id)):
        step = send(flow, started.state, reply, ctx)
        assert step.events[0] == SubjectChosen(LUIS.patient_id), reply
        assert "How has Luis felt overall this week?" in texts(step.events)[-1]


def test_a_flow_started_for_one_child_names_the_child() -> None:
    """One subject: no question, the proxy wording names the child."""
    ctx = context("en", subjects=(ANA,), proxy=True)
    flow = load_flow("pucai")
    step = runner.start(flow, ctx, FIXED_NOW)
    assert texts(step.events) == [
        "A few questions about Ana's colitis over the last 2 days.",
        "(1 of 6) Ana's abdominal pain",
    ]


# -- state ----------------------------------------------------------------------------------


def test_state_is_plain_json_and_resumes_the_same_after_a_round_trip() -> None:
    """State survives json.dumps/loads, and a restored state answers exactly the same."""
    ctx = context("en", subjects=(ANA, LUIS), proxy=True)
    flow, state = start("ibd_checkin", ctx)
    replies: list[Reply] = ["Ana", "2", "three", "back", "3", "yes", "1", "every dose", "skip"]
    for reply in replies:
        restored = json.loads(json.dumps(state))
        assert restored == state
        original = send(flow, state, reply, ctx)
        assert send(flow, restored, reply, ctx) == original
        state = original.state
    assert state["ended"] is not None


def test_resume_does_not_change_the_state_it_was_given() -> None:
    """The engine returns a new state; the caller's is untouched."""
    flow, state = start("phq9")
    before = copy.deepcopy(state)
    send_all(flow, state, ["1"])
    runner.expire(flow, state, EN, FIXED_NOW)
    runner.reprompt(flow, state, context("es"))
    assert state == before


# -- engine bugs found while writing these tests ---------------------------------------------


def test_child_placeholder_from_context_values_without_a_subject() -> None:
    """A host that passes {child} as a value (no subjects) gets the child's name."""
    ctx = context("en", values={"child": "Ana", "center": "C", "visit_time": "Thursday"})
    flow = load_flow("visit_reminder")
    first = runner.start(flow, ctx, FIXED_NOW).events[0]
    assert isinstance(first, MessageOut)
    assert first.text == "Reminder: Ana has a visit at C on Thursday."


@pytest.mark.parametrize("command", ["help", "?", "back", "skip", "ayuda"])
def test_commands_while_choosing_the_child_list_the_children_again(command: str) -> None:
    """HELP, '?', BACK or SKIP at 'Who is this report for?' re-lists the children."""
    ctx = context("en", subjects=(ANA, LUIS), proxy=True)
    flow, state = start("ibd_checkin", ctx)
    step = send(flow, state, command, ctx)
    message = only_message(step)
    assert not message.text.startswith(messages.NOT_UNDERSTOOD)
    assert message.text == messages.WHO_FOR
    assert [c.label for c in message.choices] == ["Ana", "Luis"]
    assert message.hint == "Reply 1-2"
    assert step.state == state
    chosen = send(flow, step.state, "luis", ctx)
    assert chosen.state["subject"] == {"id": LUIS.patient_id, "name": "Luis"}


@pytest.mark.parametrize(("lang", "reply"), [("en", "not formed"), ("es", "no formadas")])
def test_a_negated_option_is_not_read_as_that_option(lang: str, reply: str) -> None:
    """'not formed' must not be recorded as 'Formed' (0 points instead of 5 or 10)."""
    ctx = context(lang)
    flow, state = start("pucai", ctx)
    state = send_all(flow, state, ["1", "1"], ctx).state
    assert state["awaiting"] == "consistency"
    step = send(flow, state, reply, ctx)
    recorded = [e for e in step.events if isinstance(e, AnswerRecorded)]
    assert recorded == [] or recorded[0].code != "consistency-0"


@pytest.mark.parametrize(
    ("lang", "reply"), [("es", "no sé"), ("es", "todavía no sé"), ("en", "no idea")]
)
def test_i_dont_know_does_not_reschedule_a_visit(lang: str, reply: str) -> None:
    """'No sé' (I don't know) at a visit reminder records nothing."""
    ctx = context(lang, values={"child": "Ana", "center": "C", "visit_time": "Thursday"})
    flow, state = start("visit_reminder", ctx)
    step = send(flow, state, reply, ctx)
    assert [e for e in step.events if isinstance(e, AnswerRecorded)] == []
