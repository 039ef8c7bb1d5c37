"""The runner: start, resume, expire and stop a flow; state in, new state and events out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from c3n_bot.engine import messages, prompts
from c3n_bot.engine.answers import Answer, read_answer
from c3n_bot.engine.definitions import Flow, Item, ItemType, Numbering
from c3n_bot.engine.events import (
    AlertRaised,
    AnswerRecorded,
    Choice,
    ChoiceInput,
    Context,
    Event,
    FlowEnded,
    Input,
    MessageOut,
    Step,
    SubjectChosen,
    SubmissionCompleted,
    TextInput,
)
from c3n_bot.engine.json_copy import copy_json
from c3n_bot.engine.parsing import Command, match_option, number_from_text, parse_command
from c3n_bot.engine.parsing import LabelledOption as Labelled
from c3n_bot.engine.scoring import compute_scores, environment, fired_alerts, is_enabled

STATE_VERSION = 1
SUBJECT = "__subject__"
MAX_INVALID = 3


def start(flow: Flow, ctx: Context, now: datetime) -> Step:
    """Begin a flow: ask which child when a proxy reports for several, else the first item."""
    state: dict[str, Any] = {
        "v": STATE_VERSION,
        "flow": flow.id,
        "version": flow.version,
        "lang": ctx.lang,
        "proxy": ctx.proxy,
        "subject": None,
        "awaiting": None,
        "path": [],
        "answers": {},
        "skipped": [],
        "invalid": 0,
        "fired": [],
        "started_at": now.isoformat(),
        "ended": None,
    }
    events: list[Event] = []
    if len(ctx.subjects) > 1:
        state["awaiting"] = SUBJECT
        events.append(_subject_question(ctx))
        return Step(state, events)
    if ctx.subjects:
        subject = ctx.subjects[0]
        state["subject"] = {"id": subject.patient_id, "name": subject.name}
    _begin(flow, state, ctx, now, events)
    return Step(state, events)


def resume(flow: Flow, state: dict[str, Any], reply: Input, ctx: Context, now: datetime) -> Step:
    """Take one reply; never raises for any text, and always yields a reply while active."""
    state = copy_json(state)
    events: list[Event] = []
    if state.get("ended"):
        return Step(state, events)
    if state["awaiting"] == SUBJECT:
        _choose_subject(flow, state, reply, ctx, now, events)
        return Step(state, events)
    item = current_item(flow, state)
    if item is None:
        _advance(flow, state, ctx, now, events)
        return Step(state, events)
    command = parse_command(reply.text, ctx.lang) if isinstance(reply, TextInput) else None
    if command is not None:
        _command(flow, state, item, command, ctx, now, events)
    elif isinstance(reply, ChoiceInput) and reply.item_id != item.id:
        events.append(
            prompts.question(
                flow, item, ctx, state, prefix=ctx.translate(messages.STALE_BUTTON) + "\n"
            )
        )
    else:
        answer = read_answer(flow, item, reply, ctx, today=ctx.today or now.date())
        if answer is None:
            _invalid(flow, state, item, ctx, events)
        else:
            _record(flow, state, item, answer, ctx, events)
            _advance(flow, state, ctx, now, events)
    return Step(state, events)


def reprompt(flow: Flow, state: dict[str, Any], ctx: Context, *, nudge: bool = False) -> Step:
    """Ask the current question again (after a language switch, or as a nudge)."""
    state = copy_json(state)
    state["lang"] = ctx.lang
    prefix = ctx.translate(messages.NUDGE) + "\n" if nudge else ""
    if state.get("ended"):
        return Step(state, [])
    if state["awaiting"] == SUBJECT:
        subject = _subject_question(ctx)
        return Step(state, [MessageOut(prefix + subject.text, subject.choices, subject.hint)])
    item = current_item(flow, state)
    events: list[Event] = (
        # After a language switch the scale is listed again, in the new language.
        [prompts.question(flow, item, ctx, state, prefix=prefix, full=not nudge)] if item else []
    )
    return Step(state, events)


def expire(flow: Flow, state: dict[str, Any], ctx: Context, now: datetime) -> Step:
    """Close a session left too long: a partial submission when anything was answered."""
    return _close(flow, state, ctx, now, "expired", "partial")


def stop(flow: Flow, state: dict[str, Any], ctx: Context, now: datetime) -> Step:
    """Close a session the contact stopped (STOP, or a newer flow of higher priority)."""
    return _close(flow, state, ctx, now, "stopped", "stopped")


def current_item(flow: Flow, state: dict[str, Any]) -> Item | None:
    """The item awaiting an answer, if any."""
    awaiting = state.get("awaiting")
    if not awaiting or awaiting == SUBJECT:
        return None
    try:
        return flow.item(awaiting)
    except KeyError:
        return None


def _begin(
    flow: Flow, state: dict[str, Any], ctx: Context, now: datetime, events: list[Event]
) -> None:
    intro = flow.proxy_intro if ctx.proxy and flow.proxy_intro else flow.intro
    if intro:
        values = prompts.placeholders(ctx, state)
        events.append(MessageOut(text=prompts.fill(ctx.translate(intro), values)))
    _advance(flow, state, ctx, now, events)


def _subject_question(ctx: Context) -> MessageOut:
    subjects = [
        Choice(SUBJECT, s.patient_id, s.name, str(i + 1)) for i, s in enumerate(ctx.subjects)
    ]
    hint = prompts.fill(ctx.translate(messages.REPLY_RANGE), {"first": 1, "last": len(subjects)})
    return MessageOut(text=ctx.translate(messages.WHO_FOR), choices=tuple(subjects), hint=hint)


def _choose_subject(
    flow: Flow,
    state: dict[str, Any],
    reply: Input,
    ctx: Context,
    now: datetime,
    events: list[Event],
) -> None:
    if isinstance(reply, ChoiceInput):
        chosen = reply.code if reply.item_id == SUBJECT else None
    elif parse_command(reply.text, ctx.lang) is not None:
        # HELP, BACK or SKIP before a child is chosen: the only useful answer is the list.
        events.append(_subject_question(ctx))
        return
    else:
        options = [Labelled(s.patient_id, s.name) for s in ctx.subjects]
        chosen = match_option(reply.text, options, numbering=Numbering.POSITION, lang=ctx.lang)
        number = number_from_text(reply.text, ctx.lang)
        if chosen is None and number is not None and 1 <= number <= len(ctx.subjects):
            chosen = ctx.subjects[number - 1].patient_id
    subject = next((s for s in ctx.subjects if s.patient_id == chosen), None)
    if subject is None:
        question = _subject_question(ctx)
        lead = ctx.translate(messages.NOT_UNDERSTOOD)
        events.append(MessageOut(f"{lead} {question.text}", question.choices, question.hint))
        return
    state["subject"] = {"id": subject.patient_id, "name": subject.name}
    state["awaiting"] = None
    events.append(SubjectChosen(subject.patient_id))
    _begin(flow, state, ctx, now, events)


def _command(
    flow: Flow,
    state: dict[str, Any],
    item: Item,
    command: Command,
    ctx: Context,
    now: datetime,
    events: list[Event],
) -> None:
    tr = ctx.translate
    state["invalid"] = 0
    if command == Command.HELP:
        events.append(prompts.help_message(flow, item, ctx))
    elif command == Command.SKIP:
        if item.required:
            events.append(prompts.reprompt(flow, item, ctx, tr(messages.CANNOT_SKIP)))
            return
        state["skipped"].append(item.id)
        state["path"].append(item.id)
        events.append(AnswerRecorded(item.id, None, None, None))
        # No "Skipped." lead: the next question (or the end) is acknowledgement enough, and
        # an instrument's long question must still fit its SMS budget.
        _advance(flow, state, ctx, now, events)
    elif not state["path"]:
        events.append(
            prompts.question(flow, item, ctx, state, prefix=tr(messages.FIRST_QUESTION) + "\n")
        )
    else:
        previous = flow.item(state["path"].pop())
        state["answers"].pop(previous.id, None)
        if previous.id in state["skipped"]:
            state["skipped"].remove(previous.id)
        events.append(AnswerRecorded(previous.id, None, None, None))
        state["awaiting"] = previous.id
        events.append(prompts.question(flow, previous, ctx, state))


def _invalid(
    flow: Flow, state: dict[str, Any], item: Item, ctx: Context, events: list[Event]
) -> None:
    state["invalid"] += 1
    if state["invalid"] >= MAX_INVALID:
        state["invalid"] = 0
        stuck = messages.STUCK_REQUIRED if item.required else messages.STUCK
        events.append(
            MessageOut(
                text=ctx.translate(stuck),
                choices=prompts.choices(flow, item, ctx),
                show_options=False,
            )
        )
        return
    events.append(prompts.reprompt(flow, item, ctx, ctx.translate(messages.NOT_UNDERSTOOD)))


def _record(
    flow: Flow, state: dict[str, Any], item: Item, answer: Answer, ctx: Context, events: list[Event]
) -> None:
    state["answers"][item.id] = {
        "code": answer.code,
        "value": answer.value,
        "display": answer.display,
    }
    state["path"].append(item.id)
    state["invalid"] = 0
    events.append(AnswerRecorded(item.id, answer.code, answer.value, answer.display))
    immediate = tuple(rule for rule in flow.alerts if rule.immediate)
    env = environment(state["answers"], {}, ctx.previous_scores)
    _raise(state, fired_alerts(immediate, env, set(state["fired"])), ctx, events)


def _raise(state: dict[str, Any], rules: list[Any], ctx: Context, events: list[Event]) -> None:
    for rule in rules:
        state["fired"].append(rule.id)
        message = ctx.translate(rule.message) if rule.message else None
        events.append(AlertRaised(rule.id, rule.severity, rule.title, rule.crisis, message))


def _advance(
    flow: Flow,
    state: dict[str, Any],
    ctx: Context,
    now: datetime,
    events: list[Event],
    lead: str = "",
) -> None:
    done = set(state["path"])
    for item in flow.items:
        if item.id in done or not is_enabled(item, state["answers"]):
            continue
        if item.type == ItemType.DISPLAY:
            events.append(prompts.question(flow, item, ctx, state))
            state["path"].append(item.id)
            done.add(item.id)
            continue
        state["awaiting"] = item.id
        events.append(prompts.question(flow, item, ctx, state, prefix=lead))
        return
    _finish(flow, state, ctx, now, events)


def _finish(
    flow: Flow, state: dict[str, Any], ctx: Context, now: datetime, events: list[Event]
) -> None:
    scores, bands = _conclude(flow, state, ctx, events, status="completed")
    labels = {}
    for score in flow.scores:
        band = score.band(scores.get(score.id)) if scores.get(score.id) is not None else None
        labels[f"{score.id}_band"] = ctx.translate(band.label) if band else ""
    template = flow.result_message if flow.result_message and bands else flow.outro
    values = {**prompts.placeholders(ctx, state), **labels}
    values.update({k: v for k, v in scores.items() if v is not None})
    events.append(MessageOut(text=prompts.fill(ctx.translate(template), values)))
    events.append(FlowEnded("completed"))
    state["ended"] = now.isoformat()


def _conclude(
    flow: Flow, state: dict[str, Any], ctx: Context, events: list[Event], *, status: str
) -> tuple[dict[str, Any], dict[str, str]]:
    state["awaiting"] = None
    scores, bands = compute_scores(flow, state["answers"], ctx.previous_scores)
    env = environment(state["answers"], scores, ctx.previous_scores)
    _raise(state, fired_alerts(flow.alerts, env, set(state["fired"])), ctx, events)
    events.append(SubmissionCompleted(status, copy_json(state["answers"]), scores, bands))
    return scores, bands


def _close(
    flow: Flow, state: dict[str, Any], ctx: Context, now: datetime, reason: str, status: str
) -> Step:
    state = copy_json(state)
    events: list[Event] = []
    if state.get("ended"):
        return Step(state, events)
    if state["answers"]:
        _conclude(flow, state, ctx, events, status=status)
    state["awaiting"] = None
    state["ended"] = now.isoformat()
    events.append(FlowEnded(reason))
    return Step(state, events)
