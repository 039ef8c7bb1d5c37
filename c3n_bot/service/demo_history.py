"""The demo's last eight weeks: scheduled reports answered through the engine, and their alerts.

Every report is a conversation the pure engine runs, answer by answer, at a past time; its
events are kept by the same code a live conversation uses (`completion.raise_alert`,
`completion.record`), so scores, bands, alerts and FHIR deliveries are what the bot makes.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from c3n_bot.engine import runner
from c3n_bot.engine.definitions import Flow, Item, ItemType
from c3n_bot.engine.events import (
    AlertRaised,
    ChoiceInput,
    Context,
    Event,
    FlowEnded,
    Input,
    Subject,
    SubmissionCompleted,
    TextInput,
)
from c3n_bot.service import alerts, audit, completion, sessions, timing
from c3n_bot.service.context import Services
from c3n_bot.service.schedules import LOOKAHEAD, PRIORITY
from c3n_bot.store.base import Channel, Condition, Relationship
from c3n_bot.store.models import (
    Alert,
    ChannelIdentity,
    ContactPatient,
    ConversationSession,
    DueWork,
    OutboxMessage,
    Patient,
    StaffUser,
)
from c3n_bot.store.models.conversations import OutboxStatus
from c3n_bot.store.models.scheduling import DueStatus

SEED = 2026  # fixed: every demo tells the same story
WEEKS = 8
PROMPT_AT = time(17, 0)  # after school, in the family's timezone
MISSED = 0.12  # of the prompts older than a week: nobody answered, or stopped halfway
MOOD_MIN_AGE = 12  # as the default PHQ-9 and GAD-7 schedules
CHANNELS = frozenset({Channel.TELEGRAM, Channel.SMS, Channel.WEB})
NOTES = (
    "Called the family; plan agreed and follow-up booked.",
    "Discussed at the team huddle; reviewed at the next visit.",
)

Answers = Mapping[str, int]  # item id -> option value (choice) or the number (integer)


@dataclass(frozen=True)
class _Scripted:
    """A report written out, for the alerts the demo shows; `latest` says which regular
    report it replaces (0: the newest), None adds one the family started by keyword."""

    given: str
    flow_id: str
    latest: int | None
    answers: Answers
    open: bool = False  # its alerts wait in the inbox; the others were acknowledged


def _items(prefix: str, *values: int) -> dict[str, int]:
    return {f"{prefix}{n}": value for n, value in enumerate(values, start=1)}


SCRIPTED = (
    # Texted PHQ9 half an hour ago and answered item 9 "several days": the urgent alert.
    _Scripted("Daniel", "phq9", None, _items("q", 1, 2, 2, 1, 0, 2, 1, 0, 1, 2), open=True),
    # A flare building over two weeks: mild, then moderate activity.
    _Scripted("Valentina", "pucai", 1, {"pain": 5, "bleeding": 10, "consistency": 5,
                                         "stools": 4, "nocturnal": 0, "activity": 0}),
    _Scripted("Valentina", "pucai", 0, {"pain": 10, "bleeding": 10, "consistency": 5,
                                         "stools": 6, "nocturnal": 0, "activity": 5}, open=True),
    _Scripted("Priya", "gad7", 0, _items("q", 3, 2, 3, 2, 2, 2, 2), open=True),
    # An older flare the care team handled.
    _Scripted("Javier", "pucai", 5, {"pain": 5, "bleeding": 20, "consistency": 5,
                                      "stools": 5, "nocturnal": 0, "activity": 5}),
)  # fmt: skip
KEYWORD_REPORT_AGO = timedelta(minutes=32)


@dataclass(frozen=True)
class _Report:
    """One prompt (or keyword) and how it went: answered in full, in part, or not at all."""

    patient: Patient
    flow: Flow
    started: datetime
    trigger: str
    level: float  # 0 to 1: how unwell the answers made up for this report show the patient
    answered: int | None = None  # how many items before the family went quiet; None: all
    scripted: _Scripted | None = None


@dataclass(frozen=True)
class _Reporter:
    """Who answers for a patient, where, and the placeholders their messages use."""

    link: ContactPatient
    identity: ChannelIdentity
    values: dict[str, str]


def seed_history(
    db: Session,
    *,
    center_ids: list[uuid.UUID],
    clinicians: Mapping[uuid.UUID, StaffUser],
    services: Services,
    now: datetime,
) -> int:
    """Eight weeks of reports of the centers' patients; how many submissions were recorded.

    The alerts of reports SCRIPTED as open wait in the inbox; any other alert was
    acknowledged by the center's clinician a few hours after it was raised.
    """
    rng = random.Random(SEED)
    patients = db.scalars(
        select(Patient).where(Patient.center_id.in_(center_ids)).order_by(Patient.external_id)
    ).all()
    recorded = 0
    for index, patient in enumerate(patients):
        reporter = _reporter(db, patient)
        for flow_id in _instruments(patient, now):
            for report in _plan(patient, services.flows.get(flow_id), index, rng, now):
                alerts_raised, submitted = _report(db, report, reporter, services, rng)
                recorded += submitted
                if report.scripted is None or not report.scripted.open:
                    _acknowledge(db, alerts_raised, clinicians[patient.center_id], rng, now)
    return recorded


def _instruments(patient: Patient, now: datetime) -> list[str]:
    found = ["pucai"] if patient.condition == Condition.IBD else []
    if timing.age_on(patient.birth_date, now.date()) >= MOOD_MIN_AGE:
        found += ["phq9", "gad7"]
    return found


def _plan(
    patient: Patient, flow: Flow, index: int, rng: random.Random, now: datetime
) -> list[_Report]:
    """A patient's reports of a flow, oldest first: PUCAI weekly, PHQ-9 and GAD-7 every other
    week (GAD-7 the day after), each prompted at PROMPT_AT on the patient's own weekday."""
    zone = timing.load_zone(patient.timezone)
    today = now.astimezone(zone).date()
    weekly = flow.id == "pucai"
    days_back = rng.randrange(1, 7) if weekly else rng.randrange(2, 7) - (flow.id == "gad7")
    base, slope = rng.uniform(0.03, 0.35), rng.uniform(-0.025, 0.02)  # slope: per week
    mine = (patient.given_name, flow.id)
    scripted = {s.latest: s for s in SCRIPTED if (s.given, s.flow_id) == mine}
    reports = []
    for latest, week in enumerate(range(index % 2, WEEKS, 2) if not weekly else range(WEEKS)):
        day = today - timedelta(days=days_back + 7 * week)
        started = timing.local_to_utc(datetime.combine(day, PROMPT_AT), zone)
        level = min(0.85, max(0.0, base + slope * (WEEKS - week) + rng.gauss(0, 0.05)))
        script = scripted.get(latest)
        missed = script is None and week > 0 and rng.random() < MISSED
        answered = rng.choice((0, 2, 3)) if missed else None
        reports.append(_Report(patient, flow, started, "scheduled", level, answered, script))
    if None in scripted:
        started = now - KEYWORD_REPORT_AGO
        reports.append(_Report(patient, flow, started, "keyword", 0.0, None, scripted[None]))
    return sorted(reports, key=lambda report: report.started)


def _reporter(db: Session, patient: Patient) -> _Reporter:
    # As due.reporter: the patient answers for themself when they can, else a parent.
    links = db.scalars(select(ContactPatient).where(ContactPatient.patient_id == patient.id))
    link = min(links, key=lambda link: link.relation != Relationship.SELF)
    identity = sessions.preferred_identity(db, link.contact, available=CHANNELS)
    return _Reporter(link, identity, sessions.program_values(db, link.contact, patient))


def _report(
    db: Session, report: _Report, reporter: _Reporter, services: Services, rng: random.Random
) -> tuple[list[Alert], int]:
    """Run one report's conversation and keep what it left: its alerts, its submissions."""
    patient, flow, contact = report.patient, report.flow, reporter.link.contact
    reads_previous = any("prev." in rule.when for rule in flow.alerts)  # the PUCAI rise
    ctx = Context(
        lang=contact.language,
        translate=services.translator(contact.language),
        subjects=(Subject(str(patient.id), patient.given_name),),
        proxy=reporter.link.relation != Relationship.SELF,
        previous_scores=(
            completion.previous_scores(db, patient.id, flow.id) if reads_previous else {}
        ),
        today=report.started.astimezone(timing.load_zone(contact.timezone)).date(),
        values=reporter.values,
    )
    if report.scripted is not None:
        state, timeline = _converse(flow, ctx, report, report.scripted.answers, rng)
    else:
        # Made-up answers never raise an alert: only the SCRIPTED ones tell that story.
        for level in (report.level, report.level / 2, report.level / 4, 0.0):
            answers = _made_up(flow, level, rng)
            state, timeline = _converse(flow, ctx, report, answers, rng)
            if not any(isinstance(event, AlertRaised) for _, event in timeline):
                break
    session = _session(db, reporter, report, state, timeline)
    if report.trigger == "scheduled":
        _prompt(db, report, session)
    return _keep(db, session, reporter.identity, flow, timeline, services)


def _made_up(flow: Flow, level: float, rng: random.Random) -> dict[str, int]:
    """Answers as unwell as `level`: each option a step further up with that chance; never a
    PHQ-9 item 9 above 0 (a safety answer is only ever SCRIPTED)."""
    answers: dict[str, int] = {}
    for item in flow.items:
        steps = sum(rng.random() < level for _ in range(_steps(item)))
        if item.type == ItemType.INTEGER:
            answers[item.id] = 1 + steps  # a count: stools a day
        elif item.type == ItemType.CHOICE:
            answers[item.id] = _values(item)[0 if (flow.id, item.id) == ("phq9", "q9") else steps]
    return answers


def _steps(item: Item) -> int:
    return 8 if item.type == ItemType.INTEGER else max(0, len(item.options) - 1)


def _values(item: Item) -> list[int]:
    return sorted(option.value for option in item.options if option.value is not None)


def _reply(item: Item, answers: Answers) -> Input:
    if item.type == ItemType.CHOICE:
        code = next(o.code for o in item.options if o.value == answers[item.id])
        return ChoiceInput(item.id, code)
    return TextInput(str(answers[item.id]))


def _converse(
    flow: Flow, ctx: Context, report: _Report, answers: Answers, rng: random.Random
) -> tuple[dict[str, Any], list[tuple[datetime, Event]]]:
    """The engine's run of the report, answer by answer; each event with its time."""
    step = runner.start(flow, ctx, report.started)
    state, timeline = step.state, [(report.started, event) for event in step.events]
    wait = 20 if report.trigger == "keyword" else rng.randrange(120, 9000)  # seconds
    at = report.started + timedelta(seconds=wait)
    given = 0
    while (item := runner.current_item(flow, state)) is not None:
        if report.answered is not None and given >= report.answered:
            # Left unanswered: the clock closes it when it expires (a partial when begun).
            at += timedelta(hours=flow.expires_after_hours)
            step = runner.expire(flow, state, ctx, at)
        else:
            step = runner.resume(flow, state, _reply(item, answers), ctx, at)
            given += 1
        state = step.state
        timeline += [(at, event) for event in step.events]
        at += timedelta(seconds=rng.randrange(8, 45))
    return state, timeline


def _session(
    db: Session,
    reporter: _Reporter,
    report: _Report,
    state: dict[str, Any],
    timeline: list[tuple[datetime, Event]],
) -> ConversationSession:
    ended_at, reason = next((at, e.reason) for at, e in timeline if isinstance(e, FlowEnded))
    flow = report.flow
    # An answer moves the expiry on; an expired session ended at its expiry.
    expires = timedelta(0) if reason == "expired" else timedelta(hours=flow.expires_after_hours)
    session = ConversationSession(
        contact_id=reporter.link.contact_id,
        patient_id=report.patient.id,
        identity_id=reporter.identity.id,
        flow_id=flow.id,
        flow_version=flow.version,
        state={**state, "values": reporter.values},
        status=sessions.ENDED[reason],
        trigger=report.trigger,
        started_at=report.started,
        updated_at=ended_at,
        expires_at=ended_at + expires,
        ended_at=ended_at,
    )
    db.add(session)
    db.flush()
    return session


def _prompt(db: Session, report: _Report, session: ConversationSession) -> None:
    """The due-work row of the scheduled prompt that started the session (QI counts these)."""
    slot = report.started
    db.add(
        DueWork(
            key=f"demo:{report.patient.id}:{report.flow.id}:{slot.isoformat()}",
            kind="prompt",
            priority=PRIORITY["prompt"],
            patient_id=report.patient.id,
            flow_id=report.flow.id,
            slot_at=slot,
            due_at=slot,
            status=DueStatus.DONE,
            session_id=session.id,
            detail={},
            created_at=slot - LOOKAHEAD,
            done_at=slot,
        )
    )


def _keep(
    db: Session,
    session: ConversationSession,
    identity: ChannelIdentity,
    flow: Flow,
    timeline: list[tuple[datetime, Event]],
    services: Services,
) -> tuple[list[Alert], int]:
    """What a live session keeps of these events: alerts (a crisis reply) and the submission."""
    raised: list[Alert] = []
    submitted = 0
    for at, event in timeline:
        if isinstance(event, AlertRaised):
            alert = completion.raise_alert(db, session, identity, event, at)
            raised += [alert] if alert is not None else []
        elif isinstance(event, SubmissionCompleted):
            completion.record(db, session, identity, flow, event, at, sinks=services.sinks)
            submitted += 1
    if not any(isinstance(event, AlertRaised) and event.crisis for _, event in timeline):
        return raised, submitted
    # The crisis reply went out when the alert was raised: nothing is sent again at start-up.
    db.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.session_id == session.id,
            OutboxMessage.status == OutboxStatus.PENDING,
        )
        .values(status=OutboxStatus.SENT, sent_at=OutboxMessage.created_at, attempts=1)
    )
    return raised, submitted


def _acknowledge(
    db: Session, raised: list[Alert], clinician: StaffUser, rng: random.Random, now: datetime
) -> None:
    db.flush()
    for alert in raised:
        at = min(now, alert.raised_at + timedelta(minutes=rng.randrange(30, 20 * 60)))
        alerts.acknowledge(
            db,
            alert_id=alert.id,
            staff_id=clinician.id,
            allowed_centers={alert.center_id},
            note=rng.choice(NOTES),
            actor=audit.Actor(type="staff", id=str(clinician.id)),
            now=at,
        )
