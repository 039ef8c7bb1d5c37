"""Clock scenarios: the real clock tasks, tick by tick, in a family's own time.

Every test drives the production wiring (``Runtime.build(settings).ticker()``: materialize,
run due work, nudge, expire) with the system clock fixed by time-machine, one tick at a time,
on SQLite and on PostgreSQL. The family answers through the real ``handle_inbound``.

The family: a teen in America/New_York who reports for herself on the web, with consent to
PRO reports and visit reminders; her center keeps the defaults (quiet hours 21:00-08:00, three
prompts a day). EST is UTC-5 and EDT UTC-4: 18:00 EST = 23:00Z, 18:00 EDT = 22:00Z.

Appointments (moved, cancelled) are covered in ``test_visits.py``; two clocks at once in
``test_clock_scenarios_concurrency.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from c3n_bot.config import Settings
from c3n_bot.engine import runner
from c3n_bot.engine.definitions import ItemType
from c3n_bot.service import schedules
from c3n_bot.service.context import Services
from c3n_bot.service.conversations import Inbound, handle_inbound, start_flow
from c3n_bot.service.workers import Runtime
from c3n_bot.store.base import Channel, Purpose, Relationship
from c3n_bot.store.models import (
    Appointment,
    Consent,
    Contact,
    ContactPatient,
    ConversationSession,
    DueWork,
    OutboxMessage,
    Patient,
    Schedule,
    Submission,
)
from c3n_bot.store.models.conversations import SessionStatus, SubmissionStatus
from c3n_bot.store.models.scheduling import AppointmentStatus, DueStatus
from tests.builders import make_center, make_contact, make_identity, make_patient
from tests.service.conftest import new_message_id

TZ = "America/New_York"
NY = ZoneInfo(TZ)
SUNDAYS = "FREQ=WEEKLY;BYDAY=SU"
TASKS = {
    "materialize_schedules",
    "run_due_work",
    "nudge_silent",
    "expire_sessions",
    "escalate_alerts",
    "community",
}
QUIET = "quiet hours 21:00-08:00 (America/New_York)"
WAITING = "waiting for the family's active conversation"
MISSED = "missed: the service was down past the grace"
CAPPED = "daily cap of 3 prompts reached"
NUDGE_PREFIX = "Reminder:\n"
MINUTE = timedelta(minutes=1)


def ny(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """The UTC instant of a New York wall time (its first occurrence when it is ambiguous)."""
    return datetime(year, month, day, hour, minute, tzinfo=NY).astimezone(UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A UTC instant."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def every(start: datetime, end: datetime, step: timedelta = MINUTE) -> list[datetime]:
    """Instants from ``start`` to ``end``, both included."""
    instants = []
    at = start
    while at <= end:
        instants.append(at)
        at += step
    return instants


def around(at: datetime, minutes: int = 5) -> list[datetime]:
    """Every minute from ``minutes`` before ``at`` to ``minutes`` after it."""
    return every(at - timedelta(minutes=minutes), at + timedelta(minutes=minutes))


def timeline(*parts: Iterable[datetime]) -> list[datetime]:
    """The tick instants of a scenario: the union of its parts, in order."""
    return sorted({at for part in parts for at in part})


# -- the family ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Teen:
    """A patient who reports for herself from one web identity."""

    patient_id: uuid.UUID
    contact_id: uuid.UUID
    identity_id: uuid.UUID
    address: str


def make_teen(db: Session, *, now: datetime, quiet_hours: tuple[str, str] | None = None) -> Teen:
    """Seed (and commit) the teen, her center and her consents."""
    center = make_center(db, now=now, timezone=TZ)
    patient = make_patient(db, now=now, center=center, timezone=TZ)
    contact = make_contact(db, now=now, timezone=TZ)
    if quiet_hours is not None:
        contact.quiet_hours_start, contact.quiet_hours_end = quiet_hours
    db.add(ContactPatient(contact_id=contact.id, patient_id=patient.id, relation=Relationship.SELF))
    identity = make_identity(db, contact=contact, now=now, channel=Channel.WEB)
    for purpose in (Purpose.PRO_REPORTS, Purpose.VISIT_REMINDERS):
        db.add(
            Consent(
                contact_id=contact.id, purpose=purpose, granted=True, source="test", updated_at=now
            )
        )
    db.commit()
    return Teen(patient.id, contact.id, identity.id, identity.address)


def add_schedule(
    db: Session,
    teen: Teen,
    *,
    at_local: str,
    now: datetime,
    flow_id: str = "ibd_checkin",
    rrule: str = SUNDAYS,
) -> uuid.UUID:
    """A schedule of the teen created at ``now`` (committed); its id."""
    patient = db.get(Patient, teen.patient_id)
    assert patient is not None
    schedule = schedules.create_schedule(
        db, patient=patient, flow_id=flow_id, rrule=rrule, at_local=at_local, now=now
    )
    db.commit()
    return schedule.id


# -- the clock, the family's replies, and what the database holds ------------------------


class Clocks:
    """The production clock of one process, ticked at instants chosen by the test."""

    def __init__(
        self, settings: Settings, services: Services, traveller: time_machine.Traveller
    ) -> None:
        self.runtime = Runtime.build(settings)
        self.runtime.services = services  # every channel can send, the web one included
        self.ticker = self.runtime.ticker()
        self.services = services
        self.traveller = traveller
        self.now = datetime.now(UTC)

    def tick(self, at: datetime) -> dict[str, int]:
        """One tick of every clock task at ``at``; fails if a task failed."""
        self.traveller.move_to(at)
        self.now = at
        done = self.ticker.tick()
        assert set(done) == TASKS, f"a clock task failed at {at:%Y-%m-%d %H:%MZ}: {done}"
        return done

    def run(
        self, instants: Iterable[datetime], after: Callable[[datetime, dict[str, int]], None]
    ) -> None:
        """Tick at each instant, calling ``after(instant, counts)`` after each tick."""
        for at in instants:
            after(at, self.tick(at))

    def run_quietly(self, instants: Iterable[datetime]) -> None:
        """Tick at each instant; the family does not answer."""
        for at in instants:
            self.tick(at)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A short session: its transaction ends before the next tick (SQLite locks)."""
        with self.runtime.sessions() as db:
            yield db

    def say(self, teen: Teen, text: str = "", *, choice: tuple[str, str] | None = None) -> None:
        """The teen sends one message now (one committed transaction, as a webhook does)."""
        inbound = Inbound(
            channel=Channel.WEB,
            address=teen.address,
            provider_message_id=new_message_id(),
            text=text,
            choice=choice,
        )
        with self.runtime.sessions() as db:
            handle_inbound(db, inbound=inbound, services=self.services, now=self.now)
            db.commit()

    def answer_all(self, teen: Teen) -> str | None:
        """The teen answers her active session to the end; the flow she answered, if any."""
        answered = None
        for _ in range(40):
            with self.read() as db:
                active = active_session(db, teen)
                if active is None:
                    return answered
                answered = active.flow_id
                flow = self.services.flows.get(active.flow_id)
                item = runner.current_item(flow, active.state)
            assert item is not None, f"no question awaits an answer in {answered}"
            if item.type in (ItemType.CHOICE, ItemType.BOOLEAN):
                code = item.options[0].code if item.options else "no"
                self.say(teen, choice=(item.id, code))
            elif item.type == ItemType.INTEGER:
                self.say(teen, str(item.min or 0))
            else:
                self.say(teen, "fine" if item.required else "SKIP")
        raise AssertionError(f"{answered} did not end after 40 answers")

    def close(self) -> None:
        """Release the runtime's connections."""
        self.runtime.engine.dispose()


@pytest.fixture
def clocks(settings: Settings, services: Services, now: datetime) -> Iterator[Clocks]:
    """The production clock with time-machine holding the system clock still (tick=False)."""
    with time_machine.travel(now, tick=False) as traveller:
        clocks = Clocks(settings, services, traveller)
        try:
            yield clocks
        finally:
            clocks.close()


def active_session(db: Session, teen: Teen) -> ConversationSession | None:
    """The teen's active session, if any."""
    return db.scalar(
        select(ConversationSession).where(
            ConversationSession.contact_id == teen.contact_id,
            ConversationSession.status == SessionStatus.ACTIVE,
        )
    )


def due_work(db: Session, schedule_id: uuid.UUID | None = None) -> list[DueWork]:
    """Due work (of one schedule), by slot."""
    query = select(DueWork).where(DueWork.kind != "flow").order_by(DueWork.slot_at, DueWork.key)
    if schedule_id is not None:
        query = query.where(DueWork.schedule_id == schedule_id)
    return list(db.scalars(query))


def starts(db: Session, services: Services, teen: Teen) -> list[tuple[str, datetime]]:
    """``(flow, when)`` of every flow start the teen was sent (scheduled or asked for)."""
    rows = db.execute(
        select(ConversationSession.flow_id, OutboxMessage.body, OutboxMessage.created_at)
        .join(ConversationSession, OutboxMessage.session_id == ConversationSession.id)
        .where(
            OutboxMessage.contact_id == teen.contact_id,
            OutboxMessage.kind.in_(("prompt", "reply")),
        )
        .order_by(OutboxMessage.id)
    ).all()
    return [
        (flow_id, created_at)
        for flow_id, body, created_at in rows
        if body == services.flows.get(flow_id).intro
    ]


def nudges(db: Session, teen: Teen) -> list[datetime]:
    """When the teen was nudged."""
    rows = db.execute(
        select(OutboxMessage.body, OutboxMessage.created_at)
        .where(OutboxMessage.contact_id == teen.contact_id, OutboxMessage.kind == "prompt")
        .order_by(OutboxMessage.id)
    ).all()
    return [created_at for body, created_at in rows if body.startswith(NUDGE_PREFIX)]


def outbox_created(db: Session, teen: Teen) -> list[datetime]:
    """When each outbox row of the teen was written."""
    query = select(OutboxMessage.created_at).where(OutboxMessage.contact_id == teen.contact_id)
    return list(db.scalars(query.order_by(OutboxMessage.id)))


def answer_when_started(clocks: Clocks, teen: Teen) -> Callable[[datetime, dict[str, int]], None]:
    """After a tick that started a flow, the teen answers it at once, to the end."""

    def after(_at: datetime, done: dict[str, int]) -> None:
        if done["run_due_work"]:
            clocks.answer_all(teen)

    return after


# -- (a) DST: one prompt each Sunday at 18:00 local, whatever the offset -------------------


@dataclass(frozen=True)
class Transition:
    """Three Sundays around a DST change, the expected UTC instants, and the night to watch."""

    name: str
    created: datetime
    sundays: tuple[date, date, date]
    evening_utc: tuple[datetime, datetime, datetime]  # 18:00 local each Sunday
    night_slot_local: str  # a weekly Sunday slot inside the changing hour
    night_utc: tuple[datetime, datetime, datetime]  # that slot each Sunday
    night: tuple[datetime, datetime]  # 00:00 to 04:00 local on the transition night


SPRING = Transition(
    name="spring-forward",
    created=ny(2026, 2, 27, 12),
    sundays=(date(2026, 3, 1), date(2026, 3, 8), date(2026, 3, 15)),
    evening_utc=(utc(2026, 3, 1, 23), utc(2026, 3, 8, 22), utc(2026, 3, 15, 22)),
    # 02:30 does not exist on 8 March: shifted forward by the gap, to 03:30 EDT.
    night_slot_local="02:30",
    night_utc=(utc(2026, 3, 1, 7, 30), utc(2026, 3, 8, 7, 30), utc(2026, 3, 15, 6, 30)),
    night=(utc(2026, 3, 8, 5), utc(2026, 3, 8, 8)),
)
FALL = Transition(
    name="fall-back",
    created=ny(2026, 10, 23, 12),
    sundays=(date(2026, 10, 25), date(2026, 11, 1), date(2026, 11, 8)),
    evening_utc=(utc(2026, 10, 25, 22), utc(2026, 11, 1, 23), utc(2026, 11, 8, 23)),
    # 01:30 happens twice on 1 November: only its first occurrence (EDT) fires.
    night_slot_local="01:30",
    night_utc=(utc(2026, 10, 25, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 8, 6, 30)),
    night=(utc(2026, 11, 1, 4), utc(2026, 11, 1, 9)),
)


@pytest.mark.parametrize("change", [SPRING, FALL], ids=lambda change: change.name)
def test_a_sunday_prompt_stays_at_local_time_across_a_dst_change_never_twice_never_zero(
    clocks: Clocks, db: Session, change: Transition
) -> None:
    # Quiet hours off for this family, so the night slot shows the wall-time rule itself.
    teen = make_teen(db, now=change.created, quiet_hours=("00:00", "00:00"))
    evening = add_schedule(db, teen, at_local="18:00", now=change.created)
    night = add_schedule(db, teen, at_local=change.night_slot_local, now=change.created)
    for sunday, expected in zip(change.sundays, change.evening_utc, strict=True):
        local = expected.astimezone(NY)
        assert (local.date(), local.hour, local.minute) == (sunday, 18, 0)

    end = change.evening_utc[-1] + timedelta(hours=1)
    ticks = timeline(
        every(change.created, end, timedelta(hours=1)),  # hourly in between: nothing else fires
        every(*change.night),  # every minute of the transition night, 00:00-04:00 local
        *(around(at) for at in change.evening_utc),  # every minute of 17:55-18:05 local
        *(around(at) for at in change.night_utc),
    )
    clocks.run(ticks, answer_when_started(clocks, teen))

    with clocks.read() as read:
        for schedule_id, slots in ((evening, change.evening_utc), (night, change.night_utc)):
            rows = due_work(read, schedule_id)
            assert [row.slot_at for row in rows] == list(slots)
            assert [(row.status, row.done_at) for row in rows] == [
                (DueStatus.DONE, at) for at in slots
            ]
        want = sorted(
            [("ibd_checkin", at) for at in (*change.evening_utc, *change.night_utc)],
            key=lambda start: start[1],
        )
        assert starts(read, clocks.services, teen) == want
        evenings = [at.astimezone(NY) for _, at in want if at in change.evening_utc]
        assert {(at.hour, at.minute, at.weekday()) for at in evenings} == {(18, 0, 6)}
        assert nudges(read, teen) == []


# -- (b) quiet hours: a 22:30 slot waits for 08:00, it is not dropped ----------------------


@pytest.mark.parametrize(
    ("saturday", "morning_utc"),
    [
        (date(2026, 3, 14), utc(2026, 3, 15, 12)),  # an ordinary night (EDT)
        (date(2026, 3, 7), utc(2026, 3, 8, 12)),  # 22:30 EST, then 08:00 EDT
        (date(2026, 10, 31), utc(2026, 11, 1, 13)),  # 22:30 EDT, then 08:00 EST
    ],
    ids=["ordinary-night", "spring-forward-night", "fall-back-night"],
)
def test_a_slot_in_quiet_hours_is_deferred_with_its_reason_and_sent_at_the_end(
    clocks: Clocks, db: Session, saturday: date, morning_utc: datetime
) -> None:
    created = ny(saturday.year, saturday.month, saturday.day, 9)
    teen = make_teen(db, now=created)
    schedule = add_schedule(db, teen, at_local="22:30", now=created, rrule="FREQ=WEEKLY;BYDAY=SA")
    slot = ny(saturday.year, saturday.month, saturday.day, 22, 30)
    assert morning_utc.astimezone(NY).hour == 8

    clocks.run_quietly(timeline(every(created, slot - timedelta(minutes=10), timedelta(hours=1))))
    clocks.run_quietly(around(slot))
    with clocks.read() as read:
        (row,) = due_work(read, schedule)
        assert (row.slot_at, row.status, row.reason) == (slot, DueStatus.DEFERRED, QUIET)
        assert row.due_at == morning_utc
        assert outbox_created(read, teen) == []

    night = every(slot + timedelta(minutes=10), morning_utc - timedelta(minutes=10), 10 * MINUTE)
    clocks.run_quietly(timeline(night, around(morning_utc)))
    with clocks.read() as read:
        (row,) = due_work(read, schedule)
        assert (row.status, row.done_at) == (DueStatus.DONE, morning_utc)
        assert starts(read, clocks.services, teen) == [("ibd_checkin", morning_utc)]
        assert min(outbox_created(read, teen)) == morning_utc


# -- (c) downtime: late within the grace, missed (never a burst) past it -------------------


def test_after_two_hours_down_the_missed_prompt_goes_out_late_at_the_first_tick(
    clocks: Clocks, db: Session
) -> None:
    created = ny(2026, 3, 20, 12)
    teen = make_teen(db, now=created)
    schedule = add_schedule(db, teen, at_local="18:00", now=created)
    slot, stopped, restarted = ny(2026, 3, 22, 18), ny(2026, 3, 22, 17), ny(2026, 3, 22, 19)

    clocks.run_quietly(timeline(every(created, stopped, timedelta(hours=1)), around(stopped)))
    with clocks.read() as read:
        assert due_work(read, schedule) == []
    # The clock is down from 17:00 to 19:00 local; it restarts and ticks every minute.
    clocks.run_quietly(every(restarted, restarted + timedelta(minutes=10)))

    with clocks.read() as read:
        (row,) = due_work(read, schedule)
        assert (row.slot_at, row.status, row.done_at) == (slot, DueStatus.DONE, restarted)
        assert starts(read, clocks.services, teen) == [("ibd_checkin", restarted)]


def test_after_two_days_down_the_sunday_slot_is_missed_without_a_burst_and_the_next_one_works(
    clocks: Clocks, db: Session
) -> None:
    created = ny(2026, 3, 18, 12)
    teen = make_teen(db, now=created)
    schedule = add_schedule(db, teen, at_local="18:00", now=created)
    stopped, restarted = ny(2026, 3, 21, 12), ny(2026, 3, 23, 12)  # Saturday to Monday noon
    missed, following = ny(2026, 3, 22, 18), ny(2026, 3, 29, 18)

    clocks.run_quietly(every(created, stopped, timedelta(hours=1)))
    clocks.run_quietly(every(restarted, restarted + timedelta(hours=1)))
    with clocks.read() as read:
        (row,) = due_work(read, schedule)
        assert (row.slot_at, row.status, row.reason) == (missed, DueStatus.MISSED, MISSED)
        assert row.done_at == restarted
        assert outbox_created(read, teen) == []  # nothing sent when the clock resumed

    later = every(
        restarted + timedelta(hours=2), following + timedelta(hours=1), timedelta(hours=1)
    )
    clocks.run(timeline(later, around(following)), answer_when_started(clocks, teen))
    with clocks.read() as read:
        rows = due_work(read, schedule)
        assert [(row.slot_at, row.status) for row in rows] == [
            (missed, DueStatus.MISSED),
            (following, DueStatus.DONE),
        ]
        assert rows[1].done_at == following == utc(2026, 3, 29, 22)
        assert starts(read, clocks.services, teen) == [("ibd_checkin", following)]


# -- (d) the daily cap: three prompts a day, the fourth the next morning -------------------


def test_four_prompts_due_the_same_evening_send_three_and_defer_the_fourth_past_the_cap(
    clocks: Clocks, db: Session
) -> None:
    created = ny(2026, 4, 10, 12)
    teen = make_teen(db, now=created)
    flows = ("ibd_checkin", "phq9", "gad7", "pucai")
    ids = {add_schedule(db, teen, at_local="18:00", now=created, flow_id=f): f for f in flows}
    slot, morning = ny(2026, 4, 12, 18), ny(2026, 4, 13, 8)
    clocks.run_quietly(every(created, slot - timedelta(hours=1), timedelta(hours=1)))

    # All four are due at 18:00; one starts, the others wait for her conversation to end.
    clocks.tick(slot)
    with clocks.read() as read:
        rows = due_work(read)
        assert sorted(row.status for row in rows) == [DueStatus.DEFERRED] * 3 + [DueStatus.DONE]
        assert {row.reason for row in rows if row.status == DueStatus.DEFERRED} == {WAITING}

    answered: list[tuple[datetime, str]] = []

    def answer_two_minutes_later(at: datetime, _done: dict[str, int]) -> None:
        with clocks.read() as read:
            active = active_session(read, teen)
            if active is None or at - active.started_at < timedelta(minutes=2):
                return
        flow_id = clocks.answer_all(teen)
        assert flow_id is not None
        answered.append((at, flow_id))

    clocks.run(every(slot + MINUTE, slot + timedelta(hours=1)), answer_two_minutes_later)
    with clocks.read() as read:
        rows = due_work(read)
        done = [row for row in rows if row.status == DueStatus.DONE]
        (capped,) = [row for row in rows if row.status != DueStatus.DONE]
        assert len(done) == 3
        assert {row.done_at.astimezone(NY).date() for row in done if row.done_at} == {
            date(2026, 4, 12)
        }
        # Each waited for the previous conversation to end (answered after two minutes).
        assert sorted(row.done_at for row in done if row.done_at) == [
            slot,
            slot + timedelta(minutes=5),
            slot + timedelta(minutes=10),
        ]
        assert (capped.status, capped.reason, capped.due_at) == (
            DueStatus.DEFERRED,
            CAPPED,
            morning,
        )
        assert [flow for flow, _ in starts(read, clocks.services, teen)] == [
            flow for _, flow in answered
        ]

    night = every(slot + timedelta(hours=1), morning - timedelta(minutes=10), 10 * MINUTE)
    clocks.run_quietly(timeline(night, around(morning)))
    with clocks.read() as read:
        rows = due_work(read)
        assert all(row.status == DueStatus.DONE for row in rows)
        last = next(row for row in rows if row.schedule_id == capped.schedule_id)
        assert last.done_at == morning
        sent = starts(read, clocks.services, teen)
        assert sorted(flow for flow, _ in sent) == sorted(flows)  # each exactly once
        assert last.schedule_id is not None
        assert sent[-1] == (ids[last.schedule_id], morning)


# -- (e) non-response: one nudge after a day (not at night), expiry after three ------------


def test_a_silent_prompt_gets_one_nudge_after_a_day_and_expires_after_three_with_nothing(
    clocks: Clocks, db: Session
) -> None:
    created = ny(2026, 3, 20, 12)
    teen = make_teen(db, now=created)
    add_schedule(db, teen, at_local="18:00", now=created)
    slot = ny(2026, 3, 22, 18)
    nudge_at, expiry = slot + timedelta(hours=24), slot + timedelta(hours=72)

    ticks = timeline(
        every(created, expiry + timedelta(hours=2), 10 * MINUTE),
        around(slot),
        around(nudge_at),
        around(expiry),
    )
    clocks.run_quietly(ticks)

    with clocks.read() as read:
        assert starts(read, clocks.services, teen) == [("ibd_checkin", slot)]
        assert nudges(read, teen) == [nudge_at]
        (session,) = read.scalars(select(ConversationSession)).all()
        assert (session.status, session.ended_at) == (SessionStatus.EXPIRED, expiry)
        assert read.scalar(select(func.count()).select_from(Submission)) == 0


def test_a_nudge_due_in_the_familys_quiet_hours_waits_for_their_end(
    clocks: Clocks, db: Session
) -> None:
    created = ny(2026, 3, 20, 12)
    teen = make_teen(db, now=created)
    add_schedule(db, teen, at_local="18:00", now=created)
    slot = ny(2026, 3, 22, 18)
    clocks.run_quietly(timeline(every(created, slot, timedelta(hours=1)), around(slot)))
    # After the prompt, the family moves its quiet hours to 17:00-08:00 (a per-family override).
    with clocks.read() as write:
        write.execute(
            update(Contact)
            .where(Contact.id == teen.contact_id)
            .values(quiet_hours_start="17:00", quiet_hours_end="08:00")
        )
        write.commit()

    tuesday_morning = ny(2026, 3, 24, 8)
    ticks = timeline(
        every(slot + timedelta(minutes=10), tuesday_morning + timedelta(hours=2), 10 * MINUTE),
        around(slot + timedelta(hours=24)),
        around(tuesday_morning),
    )
    clocks.run_quietly(ticks)
    with clocks.read() as read:
        assert nudges(read, teen) == [tuesday_morning]


def test_a_parent_asked_which_child_is_not_nudged_in_quiet_hours_either(
    clocks: Clocks, db: Session
) -> None:
    created = ny(2026, 3, 20, 12)
    center = make_center(db, now=created, timezone=TZ)
    parent = make_contact(db, now=created, timezone=TZ)
    for _ in range(2):
        child = make_patient(db, now=created, center=center, timezone=TZ)
        db.add(
            ContactPatient(contact_id=parent.id, patient_id=child.id, relation=Relationship.PARENT)
        )
    identity = make_identity(db, contact=parent, now=created, channel=Channel.WEB)
    db.commit()
    family = Teen(child.id, parent.id, identity.id, identity.address)
    sunday = ny(2026, 3, 22, 18)
    clocks.tick(sunday)
    with clocks.read() as write:  # the care team starts a check-in: "which child?" first
        start_flow(
            write,
            contact_id=parent.id,
            flow_id="ibd_checkin",
            patient_id=None,
            services=clocks.services,
            now=sunday,
        )
        write.execute(
            update(Contact)
            .where(Contact.id == parent.id)
            .values(quiet_hours_start="17:00", quiet_hours_end="08:00")
        )
        write.commit()

    tuesday_morning = ny(2026, 3, 24, 8)
    ticks = timeline(
        every(sunday + timedelta(minutes=10), tuesday_morning + timedelta(hours=1), 10 * MINUTE),
        around(sunday + timedelta(hours=24)),
        around(tuesday_morning),
    )
    clocks.run_quietly(ticks)
    with clocks.read() as read:
        assert nudges(read, family) == [tuesday_morning]


def test_a_half_answered_prompt_expires_as_a_partial_submission_72_hours_after_the_last_answer(
    clocks: Clocks, db: Session
) -> None:
    created = ny(2026, 3, 20, 12)
    teen = make_teen(db, now=created)
    add_schedule(db, teen, at_local="18:00", now=created)
    slot = ny(2026, 3, 22, 18)
    answered = slot + timedelta(minutes=3)
    expiry = answered + timedelta(hours=72)
    clocks.run_quietly(timeline(every(created, slot, timedelta(hours=1)), around(slot)))
    clocks.tick(answered)
    clocks.say(teen, choice=("wellbeing", "well"))  # the first question only

    ticks = timeline(every(answered, expiry + timedelta(hours=1), 10 * MINUTE), around(expiry))
    clocks.run_quietly(ticks)
    with clocks.read() as read:
        assert len(nudges(read, teen)) <= 1
        (session,) = read.scalars(select(ConversationSession)).all()
        assert (session.status, session.ended_at) == (SessionStatus.EXPIRED, expiry)
        (submission,) = read.scalars(select(Submission)).all()
        assert submission.status == SubmissionStatus.PARTIAL
        assert set(submission.answers) == {"wellbeing"}


# -- (f) arbitration: an active conversation first; then the most urgent work --------------


def test_a_due_prompt_waits_for_the_active_conversation_and_goes_out_after_it_ends(
    clocks: Clocks, db: Session
) -> None:
    created = ny(2026, 3, 20, 12)
    teen = make_teen(db, now=created)
    schedule = add_schedule(db, teen, at_local="18:00", now=created)
    slot = ny(2026, 3, 22, 18)
    clocks.run_quietly(every(created, slot - timedelta(hours=1), timedelta(hours=1)))
    clocks.tick(slot - timedelta(minutes=2))
    clocks.say(teen, "PHQ9")  # she starts a questionnaire herself at 17:58

    clocks.run_quietly(every(slot - MINUTE, slot + timedelta(minutes=6)))
    with clocks.read() as read:
        (row,) = due_work(read, schedule)
        assert (row.status, row.reason) == (DueStatus.DEFERRED, WAITING)
        assert [flow for flow, _ in starts(read, clocks.services, teen)] == ["phq9"]

    clocks.tick(slot + timedelta(minutes=7))
    assert clocks.answer_all(teen) == "phq9"  # her conversation ends at 18:07
    clocks.run_quietly(every(slot + timedelta(minutes=8), slot + timedelta(minutes=20)))
    with clocks.read() as read:
        (row,) = due_work(read, schedule)
        assert (row.status, row.done_at) == (DueStatus.DONE, slot + timedelta(minutes=10))
        assert starts(read, clocks.services, teen) == [
            ("phq9", slot - timedelta(minutes=2)),
            ("ibd_checkin", slot + timedelta(minutes=10)),
        ]


def test_a_visit_reminder_due_the_same_minute_as_a_prompt_starts_first(
    clocks: Clocks, db: Session
) -> None:
    created = ny(2026, 3, 20, 12)
    teen = make_teen(db, now=created)
    schedule = add_schedule(db, teen, at_local="18:00", now=created)
    slot = ny(2026, 3, 22, 18)
    clocks.run_quietly(every(created, slot - timedelta(hours=1), timedelta(hours=1)))
    clocks.tick(slot - timedelta(minutes=2))  # the prompt's slot is materialized (look-ahead)

    # Written after the prompt's row: only the priority can put it first.
    visit = Appointment(
        patient_id=teen.patient_id,
        starts_at=ny(2026, 3, 23, 10),
        status=AppointmentStatus.BOOKED,
        created_at=created,
        updated_at=created,
    )
    db.add(visit)
    db.flush()
    db.add(
        DueWork(
            key=f"appointment:{visit.id}:1",
            kind="visit_reminder",
            priority=schedules.PRIORITY["visit_reminder"],
            patient_id=teen.patient_id,
            appointment_id=visit.id,
            flow_id="visit_reminder",
            slot_at=slot,
            due_at=slot,
            status=DueStatus.PENDING,
            detail={"values": {"visit_time": "Monday 10:00", "appointment_id": str(visit.id)}},
            created_at=slot - MINUTE,
        )
    )
    db.commit()
    assert schedules.PRIORITY["visit_reminder"] > schedules.PRIORITY["prompt"]

    clocks.tick(slot)
    with clocks.read() as read:
        reminder, prompt = sorted(due_work(read), key=lambda row: row.kind != "visit_reminder")
        assert (reminder.status, reminder.done_at) == (DueStatus.DONE, slot)
        assert (prompt.schedule_id, prompt.status, prompt.reason) == (
            schedule,
            DueStatus.DEFERRED,
            WAITING,
        )
        active = active_session(read, teen)
        assert active is not None and active.id == reminder.session_id
        assert active.flow_id == "visit_reminder"

    clocks.tick(slot + MINUTE)
    assert clocks.answer_all(teen) == "visit_reminder"
    clocks.run_quietly(every(slot + 2 * MINUTE, slot + timedelta(minutes=6)))
    with clocks.read() as read:
        prompt = due_work(read, schedule)[0]
        assert (prompt.status, prompt.done_at) == (DueStatus.DONE, slot + timedelta(minutes=5))
        stored = read.get(Appointment, visit.id)
        assert stored is not None and stored.status == AppointmentStatus.CONFIRMED


# -- (h) restarts: materializing the same minute again adds nothing -----------------------


def test_materializing_the_same_minute_twice_or_after_a_restart_adds_no_row(
    clocks: Clocks, db: Session
) -> None:
    created = ny(2026, 3, 20, 12)
    teen = make_teen(db, now=created)
    schedule = add_schedule(db, teen, at_local="18:00", now=created)
    slot = ny(2026, 3, 22, 18)

    with clocks.read() as first:
        assert schedules.materialize(first, slot) == 1
        first.commit()
    with clocks.read() as again:
        assert schedules.materialize(again, slot) == 0
        again.commit()
    # As if the schedule's bookkeeping were lost (a restore, a crash): the slot key holds.
    with clocks.read() as rewound:
        rewound.execute(
            update(Schedule)
            .where(Schedule.id == schedule)
            .values(last_slot_at=created, next_due_at=slot)
        )
        assert schedules.materialize(rewound, slot) == 0
        rewound.commit()
    # A restarted process ticks the same minute twice: still one slot, one prompt.
    clocks.tick(slot)
    restarted = Clocks(clocks.runtime.settings, clocks.services, clocks.traveller)
    try:
        restarted.tick(slot)
        restarted.tick(slot)
    finally:
        restarted.close()
    with clocks.read() as read:
        (row,) = due_work(read, schedule)
        assert (row.slot_at, row.status) == (slot, DueStatus.DONE)
        assert starts(read, clocks.services, teen) == [("ibd_checkin", slot)]
        assert read.scalar(select(func.count()).select_from(DueWork)) == 1


# -- one family's broken due work must not stop everyone's ---------------------------------


def test_a_slot_of_an_unknown_flow_is_cancelled_and_the_other_families_prompts_still_go_out(
    clocks: Clocks, db: Session
) -> None:
    created = ny(2026, 3, 20, 12)
    teen = make_teen(db, now=created)
    schedule = add_schedule(db, teen, at_local="18:00", now=created)
    other = make_teen(db, now=created)
    # A schedule whose flow was since removed from the deployment's flows folder.
    broken = add_schedule(db, other, at_local="18:00", now=created, flow_id="retired_flow")
    slot = ny(2026, 3, 22, 18)

    clocks.run_quietly(every(slot - timedelta(minutes=3), slot + timedelta(minutes=3)))
    with clocks.read() as read:
        (row,) = due_work(read, schedule)
        assert (row.status, row.done_at) == (DueStatus.DONE, slot)
        assert starts(read, clocks.services, teen) == [("ibd_checkin", slot)]
        (lost,) = due_work(read, broken)
        assert lost.status == DueStatus.CANCELLED and lost.reason
