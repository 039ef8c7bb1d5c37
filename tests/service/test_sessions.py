"""Sessions over time: queued starts, expiry, a process restart mid-flow, where to reach whom."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from c3n_bot.config import Settings
from c3n_bot.engine import messages
from c3n_bot.service import sessions
from c3n_bot.service.context import Services
from c3n_bot.service.conversations import Inbound, Outcome, StartError, handle_inbound, start_flow
from c3n_bot.service.workers import Runtime, periodic_tasks
from c3n_bot.store.base import Channel
from c3n_bot.store.models import (
    Alert,
    Contact,
    ConversationSession,
    DueWork,
    InboundMessage,
    OutboxMessage,
    Submission,
)
from c3n_bot.store.models.conversations import OutboxStatus, SessionStatus, SubmissionStatus
from c3n_bot.store.models.scheduling import DueStatus
from tests.builders import make_contact
from tests.service.conftest import (
    TEEN_PHONE,
    Family,
    last_outbox_id,
    new_message_id,
    outbox,
    send,
)


def _session(db: Session, session_id: uuid.UUID | None) -> ConversationSession:
    assert session_id is not None
    row = db.get(ConversationSession, session_id)
    assert row is not None
    return row


def _by_contact(db: Session, contact: Contact) -> list[ConversationSession]:
    return list(
        db.scalars(
            select(ConversationSession)
            .where(ConversationSession.contact_id == contact.id)
            .order_by(ConversationSession.started_at, ConversationSession.flow_id)
        )
    )


def _active(db: Session, contact: Contact) -> list[ConversationSession]:
    return [s for s in _by_contact(db, contact) if s.status == SessionStatus.ACTIVE]


def _submissions(db: Session) -> list[Submission]:
    return list(db.scalars(select(Submission)))


# -- one active session per contact; a second start waits ---------------------------------


def test_a_start_while_busy_is_queued_and_starts_when_the_first_ends(
    db: Session, services: Services, family: Family, now: datetime
) -> None:
    first = start_flow(
        db,
        contact_id=family.teen_contact.id,
        flow_id="phq9",
        patient_id=family.teen.id,
        services=services,
        now=now,
    )
    db.commit()
    assert first.status == "started"
    rows_before = len(outbox(db))

    later = now + timedelta(minutes=1)
    second = start_flow(
        db,
        contact_id=family.teen_contact.id,
        flow_id="ibd_checkin",
        patient_id=family.teen.id,
        services=services,
        now=later,
        trigger="schedule",
    )
    db.commit()
    assert (second.status, second.session_id) == ("queued", None)
    assert second.queued_id is not None
    waiting = db.get(DueWork, second.queued_id)
    assert waiting is not None
    assert (waiting.kind, waiting.flow_id, waiting.status) == ("flow", "ibd_checkin", "pending")
    assert (waiting.contact_id, waiting.patient_id, waiting.due_at) == (
        family.teen_contact.id,
        family.teen.id,
        later,
    )
    assert waiting.detail["trigger"] == "schedule"
    assert len(outbox(db)) == rows_before  # nothing is said about a queued start
    assert [s.flow_id for s in _active(db, family.teen_contact)] == ["phq9"]

    # All zeros: nine answers and PHQ-9 is over (q10 is only asked after a problem).
    done_at = now + timedelta(minutes=10)
    for _ in range(8):
        send(db, services, family.teen_sms, "0", now=later)
    before_last = last_outbox_id(db)
    send(db, services, family.teen_sms, "0", now=done_at)

    phq9_session, checkin_session = _by_contact(db, family.teen_contact)
    assert phq9_session.status == SessionStatus.COMPLETED
    assert checkin_session.status == SessionStatus.ACTIVE
    assert (checkin_session.flow_id, checkin_session.started_at) == ("ibd_checkin", done_at)
    assert checkin_session.trigger == "schedule"
    db.refresh(waiting)
    assert (waiting.status, waiting.done_at) == (DueStatus.DONE, done_at)
    checkin = services.flows.get("ibd_checkin")
    new_rows = [row for row in outbox(db) if row.id > before_last]
    assert [row.body for row in new_rows] == [
        "Thank you. Your PHQ-9 score is 0 (minimal). Your care team will see your answers.",
        checkin.intro,
        f"(1 of 6) {checkin.item('wellbeing').text}",
    ]
    assert [row.session_id for row in new_rows] == [
        phq9_session.id,
        checkin_session.id,
        checkin_session.id,
    ]
    # The next reply belongs to the check-in.
    assert send(db, services, family.teen_sms, "well", now=done_at) == Outcome.ANSWERED
    db.refresh(checkin_session)
    assert checkin_session.state["answers"]["wellbeing"]["code"] == "well"


def test_start_flow_refuses_unknown_and_unlinked(
    db: Session, services: Services, family: Family, now: datetime
) -> None:
    with pytest.raises(StartError):
        start_flow(
            db,
            contact_id=uuid.uuid4(),
            flow_id="phq9",
            patient_id=None,
            services=services,
            now=now,
        )
    with pytest.raises(StartError):
        start_flow(
            db,
            contact_id=family.teen_contact.id,
            flow_id="phq9",
            patient_id=family.younger_child.id,  # not hers to report for
            services=services,
            now=now,
        )
    lonely = make_contact(db, now=now)
    with pytest.raises(StartError):
        sessions.preferred_identity(db, lonely)
    db.rollback()
    assert db.scalar(select(func.count()).select_from(ConversationSession)) == 0


def test_preferred_identity_is_where_they_last_wrote_and_never_a_stopped_one(
    db: Session, services: Services, family: Family, now: datetime
) -> None:
    contact = family.teen_contact
    assert sessions.preferred_identity(db, contact) == family.teen_sms  # SMS before web
    assert sessions.preferred_identity(db, contact, Channel.WEB) == family.teen_web
    send(db, services, family.teen_web, "hello", now=now)
    assert sessions.preferred_identity(db, contact) == family.teen_web
    send(db, services, family.teen_sms, "hello", now=now + timedelta(minutes=1))
    assert sessions.preferred_identity(db, contact) == family.teen_sms
    send(db, services, family.teen_sms, "STOP", now=now + timedelta(minutes=2))
    assert sessions.preferred_identity(db, contact) == family.teen_web
    with pytest.raises(StartError, match="sms"):
        sessions.preferred_identity(db, contact, Channel.SMS)
    with pytest.raises(StartError):
        sessions.preferred_identity(db, family.parent, Channel.SMS)


def test_a_nudge_repeats_the_question_without_extending_the_session(
    db: Session, services: Services, family: Family, now: datetime
) -> None:
    result = start_flow(
        db,
        contact_id=family.teen_contact.id,
        flow_id="phq9",
        patient_id=None,
        services=services,
        now=now,
    )
    db.commit()
    session = _session(db, result.session_id)
    expires = session.expires_at
    sessions.repeat(db, session, family.teen_sms, services, now + timedelta(hours=5), nudge=True)
    db.commit()
    last = outbox(db)[-1]
    assert last.kind == "prompt"
    assert last.body.startswith(messages.NUDGE + "\n")
    assert last.body.endswith("Little interest or pleasure in doing things")
    assert session.expires_at == expires


# -- expiry -------------------------------------------------------------------------------


def test_expiry_closes_left_sessions_as_partial_and_is_idempotent(
    db: Session, services: Services, family: Family, now: datetime
) -> None:
    phq9 = services.flows.get("phq9")
    teen = start_flow(
        db,
        contact_id=family.teen_contact.id,
        flow_id="phq9",
        patient_id=None,
        services=services,
        now=now,
    )
    parent = start_flow(
        db,
        contact_id=family.parent.id,
        flow_id="ibd_checkin",
        patient_id=family.older_child.id,
        services=services,
        now=now,
    )
    db.commit()
    answered_at = now + timedelta(hours=2)
    send(db, services, family.teen_sms, "2", now=answered_at)
    send(db, services, family.teen_sms, "1", now=answered_at)
    teen_session = _session(db, teen.session_id)
    assert teen_session.expires_at == answered_at + timedelta(hours=phq9.expires_after_hours)
    rows = len(outbox(db))

    # The parent's session is past its expiry; the teen's answers kept hers alive.
    between = now + timedelta(hours=phq9.expires_after_hours, minutes=1)
    assert sessions.expire_due(db, between, services) == 1
    db.commit()
    parent_session = _session(db, parent.session_id)
    assert (parent_session.status, parent_session.ended_at) == (SessionStatus.EXPIRED, between)
    assert _submissions(db) == []  # nothing was answered: nothing to keep
    assert teen_session.status == SessionStatus.ACTIVE

    later = answered_at + timedelta(hours=phq9.expires_after_hours, minutes=1)
    expire = dict(periodic_tasks(services))["expire_sessions"]
    assert expire(db, later) == 1
    db.commit()
    db.refresh(teen_session)
    assert (teen_session.status, teen_session.ended_at) == (SessionStatus.EXPIRED, later)
    (partial,) = _submissions(db)
    assert partial.status == SubmissionStatus.PARTIAL
    assert partial.session_id == teen_session.id
    assert partial.authored_at == later
    assert {k: a["value"] for k, a in partial.answers.items()} == {"q1": 2, "q2": 1}
    assert partial.scores == {"total": None}  # more than two items missing: no total
    assert len(outbox(db)) == rows  # closing quietly, nobody is woken at night

    assert sessions.expire_due(db, later + timedelta(days=30), services) == 0
    db.commit()
    assert len(_submissions(db)) == 1
    # A late reply finds nothing to answer.
    assert send(db, services, family.teen_sms, "3", now=later) == Outcome.IDLE


def test_an_expired_session_lets_a_queued_flow_start(
    db: Session, services: Services, family: Family, now: datetime
) -> None:
    for flow_id in ("phq9", "gad7"):
        start_flow(
            db,
            contact_id=family.teen_contact.id,
            flow_id=flow_id,
            patient_id=None,
            services=services,
            now=now,
        )
    db.commit()
    later = now + timedelta(days=4)
    assert sessions.expire_due(db, later, services) == 1
    db.commit()
    assert [(s.flow_id, s.status) for s in _by_contact(db, family.teen_contact)] == [
        ("phq9", SessionStatus.EXPIRED),
        ("gad7", SessionStatus.ACTIVE),
    ]
    (gad7,) = _active(db, family.teen_contact)
    assert gad7.started_at == later
    assert outbox(db)[-1].session_id == gad7.id


def test_an_alert_raised_mid_flow_is_linked_to_the_partial_submission(
    db: Session, services: Services, family: Family, now: datetime
) -> None:
    start_flow(
        db,
        contact_id=family.teen_contact.id,
        flow_id="phq9",
        patient_id=None,
        services=services,
        now=now,
    )
    db.commit()
    for reply in ["0"] * 8 + ["1"]:
        send(db, services, family.teen_sms, reply, now=now)
    (alert,) = db.scalars(select(Alert)).all()
    assert (alert.rule, alert.submission_id) == ("phq9_item9", None)

    assert sessions.expire_due(db, now + timedelta(days=4), services) == 1
    db.commit()
    (partial,) = _submissions(db)
    assert partial.status == SubmissionStatus.PARTIAL
    assert partial.scores == {"total": 1}  # all nine items answered, q10 left open
    db.refresh(alert)
    assert alert.submission_id == partial.id
    assert len(db.scalars(select(Alert)).all()) == 1  # never raised twice


# -- a restart mid-flow -------------------------------------------------------------------


def test_a_conversation_resumes_after_a_process_restart(
    db: Session,
    engine: Engine,
    services: Services,
    settings: Settings,
    family: Family,
    now: datetime,
) -> None:
    result = start_flow(
        db,
        contact_id=family.teen_contact.id,
        flow_id="phq9",
        patient_id=None,
        services=services,
        now=now,
    )
    db.commit()
    for reply in ("1", "2", "3", "0"):
        send(db, services, family.teen_sms, reply, now=now)
    session_id = result.session_id
    assert session_id is not None
    db.close()
    engine.dispose()  # the process is gone; only the database remains

    runtime = Runtime.build(settings)  # a new process: new engine, sessions and services
    try:
        assert runtime.services is not services
        for n, reply in enumerate(("1", "0", "0", "0", "0", "1"), start=5):
            with runtime.sessions() as fresh:
                inbound = Inbound(
                    channel=Channel.SMS,
                    address=TEEN_PHONE,
                    provider_message_id=new_message_id(),
                    text=reply,
                )
                at = now + timedelta(minutes=n)
                outcome = handle_inbound(fresh, inbound=inbound, services=runtime.services, now=at)
                fresh.commit()
                assert outcome == Outcome.ANSWERED
                if n == 5:
                    state = _session(fresh, session_id).state
                    assert list(state["answers"]) == ["q1", "q2", "q3", "q4", "q5"]
                    assert state["answers"]["q5"]["value"] == 1
                    assert state["awaiting"] == "q6"
        with runtime.sessions() as fresh:
            (submission,) = fresh.scalars(select(Submission)).all()
            assert submission.status == SubmissionStatus.COMPLETED
            assert {k: a["value"] for k, a in submission.answers.items()} == {
                "q1": 1,
                "q2": 2,
                "q3": 3,
                "q4": 0,
                "q5": 1,
                "q6": 0,
                "q7": 0,
                "q8": 0,
                "q9": 0,
                "q10": 1,
            }
            assert submission.scores == {"total": 7}
            bodies = list(
                fresh.scalars(
                    select(OutboxMessage.body)
                    .where(OutboxMessage.session_id == session_id)
                    .order_by(OutboxMessage.id)
                )
            )
            # Each question asked exactly once, across the restart.
            assert len([b for b in bodies if b.startswith("(5 of 10)")]) == 1
            assert len(bodies) == len(set(bodies)) == 12
            assert fresh.scalar(select(func.count()).select_from(InboundMessage)) == 10
    finally:
        runtime.engine.dispose()


# -- found while testing: expected behaviour the code does not have yet -------------------


def test_a_queued_start_for_a_parent_of_two_still_asks_which_child(
    db: Session, services: Services, family: Family, now: datetime
) -> None:
    start_flow(
        db,
        contact_id=family.parent.id,
        flow_id="phq9",
        patient_id=family.younger_child.id,
        services=services,
        now=now,
    )
    queued = start_flow(
        db,
        contact_id=family.parent.id,
        flow_id="ibd_checkin",
        patient_id=None,
        services=services,
        now=now,
    )
    db.commit()
    assert queued.status == "queued"
    for _ in range(9):
        send(db, services, family.parent_telegram, "0", now=now)
    (checkin,) = _active(db, family.parent)
    assert checkin.flow_id == "ibd_checkin"
    assert outbox(db)[-1].body == "Who is this report for?"
    assert checkin.patient_id is None


def test_stop_does_not_start_the_next_queued_flow(
    db: Session, services: Services, family: Family, now: datetime
) -> None:
    for flow_id in ("phq9", "ibd_checkin"):
        start_flow(
            db,
            contact_id=family.teen_contact.id,
            flow_id=flow_id,
            patient_id=None,
            services=services,
            now=now,
        )
    db.commit()
    send(db, services, family.teen_sms, "1", now=now)
    send(db, services, family.teen_sms, "STOP", now=now)
    assert _active(db, family.teen_contact) == []
    pending = [row for row in outbox(db) if row.status == OutboxStatus.PENDING]
    assert [row.body.split(" ")[:3] for row in pending] == [["You", "are", "unsubscribed"]]
