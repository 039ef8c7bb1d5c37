"""The webhooks' writer: many messages to a transaction, in arrival order, each answered
only after its commit, and one bad message failing nobody else."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from c3n_bot.service.context import Services
from c3n_bot.service.conversations import Inbound, Outcome, handle_inbound
from c3n_bot.service.enrollment import create_invitation
from c3n_bot.service.inbound_queue import InboundQueue, gather_for
from c3n_bot.store.base import Channel
from c3n_bot.store.db import make_session_factory
from c3n_bot.store.models import (
    ChannelIdentity,
    ConversationSession,
    InboundMessage,
    OutboxMessage,
)
from tests.builders import link, make_contact, make_patient
from tests.service.conftest import Family, new_message_id


class Gate:
    """Holds the writer inside its first message until released, so that the next messages
    queue up and are taken together; can make one message fail."""

    def __init__(self, fail_text: str | None = None) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_text = fail_text
        self._first = True

    def __call__(self, db: Session, *, inbound: Inbound, **kwargs: Any) -> Outcome:
        if self._first:
            self._first = False
            self.entered.set()
            assert self.release.wait(10)
        if inbound.text == self.fail_text:
            raise RuntimeError("a message the service cannot handle")
        return handle_inbound(db, inbound=inbound, **kwargs)


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def queue_and_gate(
    sessions: sessionmaker[Session], services: Services, request: pytest.FixtureRequest
) -> Iterator[tuple[InboundQueue, Gate]]:
    gate = Gate(getattr(request, "param", None))
    writer = InboundQueue(sessions, services, handle=gate)
    yield writer, gate
    gate.release.set()
    writer.stop()


def _message(family: Family, text: str) -> Inbound:
    identity = family.teen_sms
    return Inbound(
        channel=identity.channel,
        address=identity.address,
        provider_message_id=new_message_id(),
        text=text,
    )


async def _send_while_held(
    writer: InboundQueue, gate: Gate, messages: list[Inbound], now: datetime
) -> list[Outcome | BaseException]:
    first = asyncio.ensure_future(writer.handle(messages[0], now))
    assert await asyncio.to_thread(gate.entered.wait, 10)
    rest = [asyncio.ensure_future(writer.handle(m, now)) for m in messages[1:]]
    await asyncio.sleep(0)  # every later message is queued behind the held one
    gate.release.set()
    return list(await asyncio.gather(first, *rest, return_exceptions=True))


def test_messages_of_one_contact_are_handled_in_arrival_order(
    queue_and_gate: tuple[InboundQueue, Gate],
    family: Family,
    sessions: sessionmaker[Session],
    now: datetime,
) -> None:
    writer, gate = queue_and_gate
    messages = [_message(family, "PHQ9")] + [_message(family, "1") for _ in range(4)]
    outcomes = asyncio.run(_send_while_held(writer, gate, messages, now))
    assert outcomes == [Outcome.STARTED] + [Outcome.ANSWERED] * 4
    with sessions() as db:
        session = db.scalar(select(ConversationSession))
        assert session is not None
        # Four answers recorded, in order: the fifth question is the one now awaited.
        assert len(session.state["answers"]) == 4
        assert db.scalar(select(func.count()).select_from(InboundMessage)) == 5


@pytest.mark.parametrize("queue_and_gate", ["boom"], indirect=True)
def test_a_failing_message_fails_only_its_own_request(
    queue_and_gate: tuple[InboundQueue, Gate],
    family: Family,
    sessions: sessionmaker[Session],
    now: datetime,
) -> None:
    writer, gate = queue_and_gate
    messages = [_message(family, "HELP"), _message(family, "boom"), _message(family, "INFO")]
    first, failed, last = asyncio.run(_send_while_held(writer, gate, messages, now))
    assert (first, last) == (Outcome.KEYWORD, Outcome.KEYWORD)
    assert isinstance(failed, RuntimeError)
    with sessions() as db:
        stored = db.scalars(select(InboundMessage.provider_message_id)).all()
        assert sorted(stored) == sorted(
            [messages[0].provider_message_id, messages[2].provider_message_id]
        )
        assert db.scalar(select(func.count()).select_from(OutboxMessage)) == 2


def test_a_replay_in_the_same_batch_is_a_duplicate(
    queue_and_gate: tuple[InboundQueue, Gate],
    family: Family,
    sessions: sessionmaker[Session],
    now: datetime,
) -> None:
    writer, gate = queue_and_gate
    message = _message(family, "HELP")
    outcomes = asyncio.run(_send_while_held(writer, gate, [message] * 3, now))
    assert outcomes == [Outcome.KEYWORD, Outcome.DUPLICATE, Outcome.DUPLICATE]
    with sessions() as db:
        assert db.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_a_blocking_caller_waits_for_the_commit(
    sessions: sessionmaker[Session], services: Services, family: Family, now: datetime
) -> None:
    writer = InboundQueue(sessions, services)
    try:
        assert writer.handle_now(_message(family, "HELP"), now) == Outcome.KEYWORD
        with sessions() as db:  # committed before handle_now returned
            assert db.scalar(select(func.count()).select_from(OutboxMessage)) == 1
    finally:
        writer.stop()
    writer.stop()  # stopping twice is harmless


@pytest.mark.parametrize(("gather", "transactions"), [(0.0, 2), (1.0, 1)])
def test_the_writer_waits_for_company_only_when_told_to(
    sessions: sessionmaker[Session],
    services: Services,
    family: Family,
    now: datetime,
    gather: float,
    transactions: int,
) -> None:
    commits: list[Session] = []
    event.listen(sessions, "after_commit", commits.append)
    writer = InboundQueue(sessions, services, gather=gather)
    try:

        async def two_in_turn() -> list[Outcome]:
            first = asyncio.ensure_future(writer.handle(_message(family, "HELP"), now))
            # The second arrives once the writer has taken the first (and is handling it,
            # or, told to gather, waiting for company): the first never waits out `gather`.
            await asyncio.sleep(0.2)
            assert not first.done() or gather == 0.0
            second = writer.handle(_message(family, "INFO"), now)
            return list(await asyncio.gather(first, second))

        assert asyncio.run(two_in_turn()) == [Outcome.KEYWORD, Outcome.KEYWORD]
        assert len(commits) == transactions
    finally:
        writer.stop()


def test_only_postgresql_gathers() -> None:
    assert gather_for("postgresql") > 0 == gather_for("sqlite")


def test_a_batch_of_several_senders_reads_ahead_and_stays_in_order(
    queue_and_gate: tuple[InboundQueue, Gate],
    family: Family,
    sessions: sessionmaker[Session],
    now: datetime,
) -> None:
    writer, gate = queue_and_gate

    def parent(text: str) -> Inbound:
        identity = family.parent_telegram
        return Inbound(
            channel=identity.channel,
            address=identity.address,
            provider_message_id=new_message_id(),
            text=text,
        )

    # The teen's PHQ-9 starts alone; the rest arrive together: the teen's session is read
    # ahead for her first answer only, the parent has none when the batch begins.
    messages = [
        _message(family, "PHQ9"),
        parent("GAD7"),
        _message(family, "1"),
        parent("1"),
        _message(family, "2"),
        _message(family, "3"),
        parent("2"),
    ]
    outcomes = asyncio.run(_send_while_held(writer, gate, messages, now))
    assert outcomes == [Outcome.STARTED, Outcome.STARTED] + [Outcome.ANSWERED] * 5
    with sessions() as db:
        by_contact = {s.contact_id: s for s in db.scalars(select(ConversationSession))}
        teen = by_contact[family.teen_contact.id].state["answers"]
        assert [teen[item]["code"] for item in teen] == ["LA6569-3", "LA6570-1", "LA6571-9"]
        assert by_contact[family.parent.id].state["flow"] == "gad7"
        assert db.scalar(select(func.count()).select_from(InboundMessage)) == len(messages)


def test_a_sender_enrolled_earlier_in_the_batch_is_known_to_their_next_message(
    queue_and_gate: tuple[InboundQueue, Gate],
    family: Family,
    sessions: sessionmaker[Session],
    now: datetime,
) -> None:
    writer, gate = queue_and_gate
    with sessions() as db:
        patient = make_patient(db, now=now)
        contact = make_contact(db, now=now)
        link(db, contact=contact, patient=patient)
        code = create_invitation(
            db,
            patient_id=patient.id,
            contact_id=contact.id,
            allowed_centers={patient.center_id},
            now=now,
        ).enrollment.sms_code
        db.commit()
    phone = "+16175550999"

    def newcomer(text: str) -> Inbound:
        return Inbound(Channel.SMS, phone, new_message_id(), text)

    # Both of the newcomer's messages are stored before the first enrolls them.
    messages = [_message(family, "HELP"), newcomer(f"JOIN {code}"), newcomer("yes")]
    outcomes = asyncio.run(_send_while_held(writer, gate, messages, now))
    assert outcomes == [Outcome.KEYWORD, Outcome.ENROLLED, Outcome.ANSWERED]
    with sessions() as db:
        identity = db.scalar(select(ChannelIdentity).where(ChannelIdentity.address == phone))
        assert identity is not None and identity.contact_id == contact.id
        stored = dict(
            db.execute(
                select(InboundMessage.provider_message_id, InboundMessage.identity_id).where(
                    InboundMessage.provider_message_id.in_(
                        [m.provider_message_id for m in messages[1:]]
                    )
                )
            ).all()
        )
        # Unknown when JOIN arrived, as one by one; known by the time "yes" was handled.
        assert stored == {
            messages[1].provider_message_id: None,
            messages[2].provider_message_id: identity.id,
        }


def test_a_batch_of_answers_writes_its_steps_and_replies_in_one_statement_each(
    family: Family,
    sessions: sessionmaker[Session],
    services: Services,
    engine: Engine,
    now: datetime,
) -> None:
    def parent(text: str) -> Inbound:
        identity = family.parent_telegram
        return Inbound(identity.channel, identity.address, new_message_id(), text)

    starter = InboundQueue(sessions, services)
    for start in (_message(family, "PHQ9"), parent("GAD7")):
        assert starter.handle_now(start, now) is Outcome.STARTED
    assert starter.handle_now(parent("1"), now) is Outcome.ANSWERED  # which child: the first
    starter.stop()
    with sessions() as db:
        replies_before = db.scalar(select(func.count()).select_from(OutboxMessage))

    gate = Gate()
    writer = InboundQueue(sessions, services, handle=gate)
    executed: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        executed.append(" ".join(statement.split()[:3]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        # The teen's first answer is held alone; then the parent's answer and the teen's
        # second are one batch, with one UPDATE of their sessions and one INSERT of replies.
        messages = [_message(family, "1"), parent("1"), _message(family, "2")]
        outcomes = asyncio.run(_send_while_held(writer, gate, messages, now))
    finally:
        event.remove(engine, "before_cursor_execute", record)
        writer.stop()
    assert outcomes == [Outcome.ANSWERED] * 3
    # Two transactions: the held answer's, then the batch's.
    assert executed.count("UPDATE sessions SET") == 2
    assert executed.count("INSERT INTO outbox_messages") == 2
    with sessions() as db:
        by_contact = {s.contact_id: s for s in db.scalars(select(ConversationSession))}
        assert len(by_contact[family.teen_contact.id].state["answers"]) == 2
        assert len(by_contact[family.parent.id].state["answers"]) == 1
        replies = db.scalars(
            select(OutboxMessage.address).order_by(OutboxMessage.id).offset(replies_before)
        ).all()
    teen, parent_chat = family.teen_sms.address, family.parent_telegram.address
    assert replies == [teen, parent_chat, teen]
