"""Many families at one slot: two clocks at once never duplicate; nudges reach every family.

Each clock is a separate ``Runtime`` (its own engine and connection pool), as two ``c3n-bot
clock`` processes are, running the production clock tasks for the same minute. On PostgreSQL
they run truly at once (two threads released together by a barrier); on SQLite, whose writers
take turns, they tick the same minutes one after the other.

A clock task settles at most a batch (500) of rows a tick; with more families than that, each
of them must still be served, batch after batch.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from c3n_bot.config import Settings
from c3n_bot.service import schedules
from c3n_bot.service.context import Services
from c3n_bot.service.workers import Runtime
from c3n_bot.store.base import Base, Channel, Condition, Purpose, Relationship
from c3n_bot.store.inserts import insert_ignoring_duplicates_bulk
from c3n_bot.store.models import (
    ChannelIdentity,
    Consent,
    Contact,
    ContactPatient,
    ConversationSession,
    DueWork,
    OutboxMessage,
    Patient,
)
from c3n_bot.store.models.scheduling import DueStatus
from tests.builders import make_center

TZ = "America/New_York"
FAMILIES = 200
CREATED = datetime(2026, 3, 20, 12, tzinfo=ZoneInfo(TZ)).astimezone(UTC)
SLOT = datetime(2026, 3, 22, 22, 0, tzinfo=UTC)  # Sunday 18:00 EDT
ROUNDS = (SLOT, SLOT, SLOT + timedelta(minutes=1))
TASKS = {
    "materialize_schedules",
    "run_due_work",
    "nudge_silent",
    "expire_sessions",
    "escalate_alerts",
    "community",
}
INTRO = "Time for your weekly check-in. It takes about a minute."


def seed_families(db: Session, count: int) -> list[uuid.UUID]:
    """``count`` teens reporting for themselves on the web, each with a Sunday 18:00 check-in."""
    center = make_center(db, now=CREATED, timezone=TZ)
    patients, contacts = [], []
    for n in range(count):
        patients.append(
            Patient(
                id=uuid.uuid4(),
                center_id=center.id,
                external_id=f"CLK-{n:04d}",
                given_name="Sam",
                family_name=f"Clock{n}",
                birth_date=date(2011, 1, 1),
                condition=Condition.IBD,
                language="en",
                timezone=TZ,
                created_at=CREATED,
            )
        )
        contacts.append(
            Contact(
                id=uuid.uuid4(),
                display_name=f"Sam Clock{n}",
                language="en",
                timezone=TZ,
                created_at=CREATED,
            )
        )
    db.add_all([*patients, *contacts])
    db.flush()
    for n, (patient, contact) in enumerate(zip(patients, contacts, strict=True)):
        db.add_all(
            [
                ContactPatient(
                    contact_id=contact.id, patient_id=patient.id, relation=Relationship.SELF
                ),
                ChannelIdentity(
                    contact_id=contact.id,
                    channel=Channel.WEB,
                    address=f"web-clock-{n}",
                    created_at=CREATED,
                ),
                Consent(
                    contact_id=contact.id,
                    purpose=Purpose.PRO_REPORTS,
                    granted=True,
                    source="test",
                    updated_at=CREATED,
                ),
            ]
        )
    db.flush()
    for patient in patients:
        schedules.create_schedule(
            db,
            patient=patient,
            flow_id="ibd_checkin",
            rrule="FREQ=WEEKLY;BYDAY=SU",
            at_local="18:00",
            now=CREATED,
        )
    db.commit()
    return [contact.id for contact in contacts]


def runtime(settings: Settings, services: Services, at: list[datetime]) -> Runtime:
    """A clock process of its own, whose clock reads ``at[0]`` (the minute the test sets)."""
    built = Runtime.build(settings, clock=lambda: at[0])
    built.services = services
    return built


def assert_once_each(db: Session, contacts: list[uuid.UUID]) -> None:
    """One due row per (schedule, slot), all done; one session and one intro per family."""
    rows = db.execute(select(DueWork.schedule_id, DueWork.slot_at, DueWork.status)).all()
    assert len(rows) == len(contacts)
    assert len({(schedule_id, slot) for schedule_id, slot, _ in rows}) == len(contacts)
    assert {slot for _, slot, _ in rows} == {SLOT}
    assert {status for _, _, status in rows} == {DueStatus.DONE}
    sessions = db.execute(
        select(ConversationSession.contact_id, func.count())
        .group_by(ConversationSession.contact_id)
    ).all()  # fmt: skip
    assert dict(sessions) == dict.fromkeys(contacts, 1)
    intros = db.execute(
        select(OutboxMessage.contact_id, func.count())
        .where(OutboxMessage.kind == "prompt", OutboxMessage.body == INTRO)
        .group_by(OutboxMessage.contact_id)
    ).all()
    assert dict(intros) == dict.fromkeys(contacts, 1)
    assert set(db.scalars(select(OutboxMessage.created_at))) == {SLOT}


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_clocks_ticking_the_same_minute_at_once_on_postgresql_never_duplicate(
    settings: Settings, services: Services, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    contacts = seed_families(db, FAMILIES)
    db.close()
    # The worst case, made certain: both clocks have read the same due schedules before
    # either writes a slot (a clock that finds nothing due goes on after a few seconds).
    meet, met = threading.Barrier(2), []

    def meet_then_write(db: Session, model: type[Base], rows: list[dict[str, Any]]) -> int:
        try:
            meet.wait(timeout=5)
            met.append(len(rows))
        except threading.BrokenBarrierError:
            pass
        return insert_ignoring_duplicates_bulk(db, model, rows)

    monkeypatch.setattr(
        "c3n_bot.service.schedules.insert_ignoring_duplicates_bulk", meet_then_write
    )
    at = [SLOT]
    clocks = [runtime(settings, services, at) for _ in range(2)]
    barrier = threading.Barrier(len(clocks))
    results: list[list[dict[str, int]]] = [[] for _ in clocks]
    failures: list[BaseException] = []

    def run(index: int) -> None:
        ticker = clocks[index].ticker()
        try:
            for minute in ROUNDS:
                barrier.wait(timeout=60)
                if index == 0:
                    at[0] = minute
                barrier.wait(timeout=60)  # both read the new minute, then tick together
                results[index].append(ticker.tick())
        except BaseException as exc:  # reported below, from the test's own thread
            failures.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clocks))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        for clock in clocks:
            clock.engine.dispose()
    assert not failures, failures
    assert not any(thread.is_alive() for thread in threads)
    assert met == [FAMILIES, FAMILIES]  # both computed every slot, and wrote them at once

    # No task of either clock failed (a unique violation or a deadlock would show here).
    for ticks in results:
        assert [set(done) for done in ticks] == [TASKS] * len(ROUNDS)
    # Between them, the two clocks wrote every slot once and started every prompt once.
    assert sum(done["materialize_schedules"] for ticks in results for done in ticks) == FAMILIES
    assert sum(done["run_due_work"] for ticks in results for done in ticks) == FAMILIES
    with clocks[0].sessions() as read:
        assert_once_each(read, contacts)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_two_clocks_ticking_the_same_minutes_in_turn_on_sqlite_never_duplicate(
    settings: Settings, services: Services, db: Session
) -> None:
    contacts = seed_families(db, FAMILIES)
    db.close()
    at = [SLOT]
    clocks = [runtime(settings, services, at) for _ in range(2)]
    try:
        tickers = [clock.ticker() for clock in clocks]
        counts: dict[str, int] = dict.fromkeys(TASKS, 0)
        for minute in ROUNDS:
            at[0] = minute
            for ticker in tickers:
                done = ticker.tick()
                assert set(done) == TASKS
                for name, count in done.items():
                    counts[name] += count
        assert counts["materialize_schedules"] == counts["run_due_work"] == FAMILIES
        with clocks[0].sessions() as read:
            assert_once_each(read, contacts)
    finally:
        for clock in clocks:
            clock.engine.dispose()


def test_every_silent_family_is_nudged_after_24_hours_when_more_than_a_batch_are_silent(
    settings: Settings, services: Services, db: Session
) -> None:
    families = 501  # one more than a tick's batch
    contacts = seed_families(db, families)
    db.close()
    at = [SLOT]
    clock = runtime(settings, services, at)
    try:
        ticker = clock.ticker()
        minutes = [SLOT + timedelta(minutes=n) for n in range(3)]
        nudge_minutes = [SLOT + timedelta(hours=24, minutes=n) for n in range(10)]
        for minute in (*minutes, *nudge_minutes):
            at[0] = minute
            assert set(ticker.tick()) == TASKS
        with clock.sessions() as read:
            started = read.scalar(select(func.count()).select_from(ConversationSession))
            assert started == families  # 500 at 18:00, the last one at 18:01
            nudged = read.execute(
                select(OutboxMessage.contact_id, func.count())
                .where(OutboxMessage.kind == "prompt", OutboxMessage.body.startswith("Reminder:"))
                .group_by(OutboxMessage.contact_id)
            ).all()
            assert dict(nudged) == dict.fromkeys(contacts, 1)
    finally:
        clock.engine.dispose()
