"""Every submission reaches every FHIR sink once: through failures, restarts and a crash."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from c3n_bot.config import FhirSink, data_dir, load_settings
from c3n_bot.engine.events import SubmissionCompleted
from c3n_bot.registry.sink_pusher import LEASE, SinkPusher
from c3n_bot.service.conversations import Inbound, handle_inbound, start_flow
from c3n_bot.service.flows import FlowCatalog
from c3n_bot.service.registry_queue import queue_deliveries
from c3n_bot.store.base import Channel, Relationship
from c3n_bot.store.db import make_session_factory
from c3n_bot.store.models import RegistryDelivery
from c3n_bot.store.models.registry import DeliveryStatus
from c3n_bot.web.app import create_app
from tests.builders import link, make_contact, make_identity, make_patient, make_submission
from tests.conftest import TEST_SECRET_KEY
from tests.engine.transcripts import answer_items, context, events_of, load_flow
from tests.fakes import FakeFhirServer, MovableClock, guard_loopback
from tests.fakes.fhir import outcome

TOKENS = {"alpha": "alpha-secret-token", "beta": "beta-secret-token"}
DEADLINE = 10.0


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    guard_loopback(monkeypatch)


@pytest.fixture
def servers() -> Iterator[dict[str, FakeFhirServer]]:
    """A token-checking fake FHIR server per sink."""
    fakes = {name: FakeFhirServer(token) for name, token in TOKENS.items()}
    with fakes["alpha"], fakes["beta"]:
        yield fakes


@pytest.fixture
def sinks(servers: dict[str, FakeFhirServer]) -> dict[str, FhirSink]:
    """The two sinks as the settings describe them."""
    return {name: FhirSink(name, fake.url, TOKENS[name]) for name, fake in servers.items()}


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """The runtime's kind of session factory."""
    return make_session_factory(engine)


@pytest.fixture
def clock(now: datetime) -> MovableClock:
    """The pushers' clock; only the test moves it."""
    return MovableClock(now)


@pytest.fixture
def make_pusher(
    sessions: sessionmaker[Session], clock: MovableClock
) -> Iterator[Callable[[FhirSink], SinkPusher]]:
    """Pushers on the shipped flows and the test's clock, with a fixed jitter; stopped after."""
    flows = FlowCatalog.from_dir(data_dir("flows"))
    made: list[SinkPusher] = []

    def make(sink: FhirSink) -> SinkPusher:
        pusher = SinkPusher(sessions, flows, sink, clock, jitter=lambda: 0.5, idle_wait=0.01)
        made.append(pusher)
        return pusher

    yield make
    for pusher in made:
        pusher.stop()


@cache
def phq9_result() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Answers, scores and bands of a PHQ-9 answered through the engine (total 13)."""
    flow = load_flow("phq9")
    replies = {f"q{n}": str(n % 4) for n in range(1, 10)} | {"q10": "1"}
    events = events_of(answer_items(flow, context("en"), replies))
    (event,) = [e for e in events if isinstance(e, SubmissionCompleted)]
    return event.answers, event.scores, event.bands


def submit(sessions: sessionmaker[Session], now: datetime, count: int) -> list[str]:
    """`count` PHQ-9 submissions of two patients (one reported by a parent), queued; their ids."""
    answers, scores, bands = phq9_result()
    with sessions.begin() as db:
        teen = make_patient(db, now=now)
        child = make_patient(db, now=now)
        parent = make_contact(db, now=now)
        link(db, contact=parent, patient=child, relation=Relationship.PARENT)
        ids = []
        for n in range(count):
            patient, reporter = (teen, None) if n % 2 == 0 else (child, parent)
            row = make_submission(
                db,
                patient=patient,
                reporter=reporter,
                now=now,
                answers=answers,
                scores=scores,
                bands=bands,
            )
            queue_deliveries(db, submission_id=row.id, now=now, sinks=sorted(TOKENS))
            ids.append(str(row.id))
    return ids


def rows(sessions: sessionmaker[Session], sink: str) -> list[RegistryDelivery]:
    """The deliveries of one sink, in id order."""
    with sessions() as db:
        query = select(RegistryDelivery).where(RegistryDelivery.sink == sink)
        return list(db.scalars(query.order_by(RegistryDelivery.id)))


def wait_until(condition: Callable[[], bool]) -> None:
    """Poll a condition every few ms, failing after DEADLINE seconds."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < DEADLINE, "condition not met in time"
        time.sleep(0.01)


def assert_once(fake: FakeFhirServer, submission_ids: list[str]) -> None:
    """The server holds each submission's response and score exactly once."""
    responses = fake.resources["QuestionnaireResponse"]
    assert sorted(r["identifier"]["value"] for r in responses) == sorted(submission_ids)
    assert fake.count("Observation") == len(submission_ids)
    assert fake.count("Patient") == min(2, len(submission_ids))
    assert fake.count("RelatedPerson") == (1 if len(submission_ids) > 1 else 0)


def test_every_submission_arrives_once_at_every_sink_through_failures_and_a_restart(
    sessions: sessionmaker[Session],
    servers: dict[str, FakeFhirServer],
    sinks: dict[str, FhirSink],
    make_pusher: Callable[[FhirSink], SinkPusher],
    clock: MovableClock,
    now: datetime,
) -> None:
    ids = submit(sessions, now, 3)
    servers["alpha"].fail_next(503)
    servers["alpha"].fail_next(429, retry_after="7")
    servers["beta"].fail_next(500, times=2)

    first = make_pusher(sinks["alpha"])
    assert first.drain_once() == 3
    first.stop()  # a restart: the next pusher is a new one

    retried, limited, delivered = rows(sessions, "alpha")
    assert (retried.status, retried.attempts, retried.last_status_code) == ("pending", 1, 503)
    assert retried.next_attempt_at == clock.now + timedelta(seconds=1.5)  # backoff
    assert (limited.last_status_code, limited.next_attempt_at) == (
        429,
        clock.now + timedelta(seconds=7),  # Retry-After
    )
    assert (delivered.status, delivered.attempts, delivered.delivered_at) == (
        "delivered",
        1,
        clock.now,
    )
    second = make_pusher(sinks["alpha"])
    assert second.drain_once() == 0  # nothing due before the backoff
    clock.advance(seconds=2)
    assert second.drain_once() == 1
    clock.advance(seconds=5)
    assert second.drain_once() == 1

    beta = make_pusher(sinks["beta"])
    beta.start()
    # Both failures recorded (not merely answered): only then may the clock move on.
    wait_until(lambda: sum(r.attempts for r in rows(sessions, "beta")) == 3)
    assert len(servers["beta"].failed_transactions) == 2
    clock.advance(minutes=1)
    beta.wake()
    wait_until(lambda: {r.status for r in rows(sessions, "beta")} == {DeliveryStatus.DELIVERED})

    for name, fake in servers.items():
        assert_once(fake, ids)
        assert {r.status for r in rows(sessions, name)} == {DeliveryStatus.DELIVERED}
        assert len(fake.transactions) == 3


def test_a_crash_between_the_servers_answer_and_our_commit_creates_nothing_twice(
    sessions: sessionmaker[Session],
    servers: dict[str, FakeFhirServer],
    sinks: dict[str, FhirSink],
    make_pusher: Callable[[FhirSink], SinkPusher],
    clock: MovableClock,
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = submit(sessions, now, 1)

    class Crash(Exception):
        pass

    def die(*_: Any) -> None:
        raise Crash

    doomed = make_pusher(sinks["alpha"])
    with monkeypatch.context() as patch:
        patch.setattr(doomed, "_finish", die)
        with pytest.raises(Crash):
            doomed.drain_once()
    assert len(servers["alpha"].transactions) == 1
    (row,) = rows(sessions, "alpha")
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 0, now + LEASE)

    survivor = make_pusher(sinks["alpha"])
    assert survivor.drain_once() == 0  # leased by the dead process until the lease runs out
    clock.advance(seconds=LEASE.total_seconds())
    assert survivor.drain_once() == 1

    (row,) = rows(sessions, "alpha")
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 1, 200)
    assert len(servers["alpha"].transactions) == 2
    statuses = [e["response"]["status"] for e in servers["alpha"].responses[1]["entry"]]
    assert statuses == ["200 OK"] * 3  # Patient, QuestionnaireResponse, Observation: found
    assert_once(servers["alpha"], ids)


@pytest.mark.parametrize("status", [400, 422])
def test_a_refusal_marks_the_delivery_failed_and_keeps_the_operation_outcome(
    sessions: sessionmaker[Session],
    servers: dict[str, FakeFhirServer],
    sinks: dict[str, FhirSink],
    make_pusher: Callable[[FhirSink], SinkPusher],
    clock: MovableClock,
    now: datetime,
    status: int,
) -> None:
    submit(sessions, now, 1)
    refusal = outcome("invalid", "QuestionnaireResponse.item[0]: unknown linkId")
    servers["alpha"].fail_next(status, issue=refusal)
    pusher = make_pusher(sinks["alpha"])

    assert pusher.drain_once() == 1
    clock.advance(days=1)
    assert pusher.drain_once() == 0

    (row,) = rows(sessions, "alpha")
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 1, status)
    assert row.operation_outcome == refusal
    assert servers["alpha"].resources == {}


def test_a_wrong_token_is_refused_and_kept_for_staff(
    sessions: sessionmaker[Session],
    servers: dict[str, FakeFhirServer],
    make_pusher: Callable[[FhirSink], SinkPusher],
    now: datetime,
) -> None:
    submit(sessions, now, 1)
    pusher = make_pusher(FhirSink("alpha", servers["alpha"].url, "not-the-token"))

    pusher.drain_once()

    (row,) = rows(sessions, "alpha")
    assert (row.status, row.last_status_code) == ("failed", 401)
    assert row.operation_outcome is not None
    assert row.operation_outcome["issue"][0]["code"] == "login"


def test_an_unreachable_server_is_retried_with_growing_backoff(
    sessions: sessionmaker[Session],
    make_pusher: Callable[[FhirSink], SinkPusher],
    clock: MovableClock,
    now: datetime,
) -> None:
    submit(sessions, now, 1)
    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pusher = make_pusher(FhirSink("alpha", f"http://127.0.0.1:{port}/fhir", None))

    waits = []
    for _ in range(4):
        assert pusher.drain_once() == 1
        (row,) = rows(sessions, "alpha")
        waits.append((row.next_attempt_at - clock.now).total_seconds())
        clock.now = row.next_attempt_at

    assert waits == [1.5, 3.0, 6.0, 12.0]  # half fixed, half jitter (fixed at 0.5 here)
    assert (row.status, row.attempts, row.last_status_code) == ("pending", 4, None)


def test_two_pushers_of_one_sink_never_push_the_same_row(
    sessions: sessionmaker[Session],
    servers: dict[str, FakeFhirServer],
    sinks: dict[str, FhirSink],
    make_pusher: Callable[[FhirSink], SinkPusher],
    now: datetime,
) -> None:
    ids = submit(sessions, now, 12)
    pushers = [make_pusher(sinks["alpha"]) for _ in range(2)]
    for pusher in pushers:
        pusher.start()

    wait_until(lambda: {r.status for r in rows(sessions, "alpha")} == {DeliveryStatus.DELIVERED})

    assert len(servers["alpha"].transactions) == 12
    assert_once(servers["alpha"], ids)
    assert servers["beta"].transactions == []


def test_the_apps_settings_push_what_a_conversation_submits_to_each_sink(
    clean_env: Path,
    database_url: str,
    servers: dict[str, FakeFhirServer],
    clock: MovableClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "DATABASE_URL": database_url,
        "SECRET_KEY": TEST_SECRET_KEY,
        "DEMO": "false",
        "FHIR_SINKS": ",".join(f"{name}={fake.url}" for name, fake in servers.items()),
        "FHIR_TOKEN_ALPHA": TOKENS["alpha"],
        "FHIR_TOKEN_BETA": TOKENS["beta"],
    }.items():
        monkeypatch.setenv(f"C3N_{name}", value)
    app = create_app(load_settings(), embedded_workers=True, clock=clock, register=False)
    state = app.state.c3n

    with TestClient(app):
        with state.sessions.begin() as db:
            patient = make_patient(db, now=clock.now)
            contact = make_contact(db, now=clock.now)
            link(db, contact=contact, patient=patient, relation=Relationship.SELF)
            identity = make_identity(db, contact=contact, now=clock.now, channel=Channel.WEB)
            start_flow(
                db,
                contact_id=contact.id,
                flow_id="gad7",
                patient_id=patient.id,
                services=state.services,
                now=clock.now,
            )
        for n, reply in enumerate(["1", "2", "0", "3", "1", "2", "0"]):
            with state.sessions.begin() as db:
                inbound = Inbound(Channel.WEB, identity.address, f"gad7-{n}", reply)
                handle_inbound(db, inbound=inbound, services=state.services, now=clock.now)
        for fake in servers.values():
            fake.wait_transactions(1)
        wait_until(
            lambda: (
                {r.status for r in rows(state.sessions, "alpha") + rows(state.sessions, "beta")}
                == {DeliveryStatus.DELIVERED}
            )
        )

    for fake in servers.values():
        (observation,) = fake.resources["Observation"]
        assert observation["valueInteger"] == 9
        assert observation["code"]["coding"][0]["code"] == "70274-6"
        (response,) = fake.resources["QuestionnaireResponse"]
        assert response["subject"] == {"reference": "Patient/1"}
        assert len(response["item"]) == 7
