"""The schedule preview: what the clock would send, when in local time, and why not.

Mostly a patient in New York with a parent reporting on Telegram. 2026-03-01 and 03-08 are
Sundays; the US springs forward on 2026-03-08, so 18:00 EST is 23:00Z and 18:00 EDT is 22:00Z.
The fixed ``now`` is Monday 2026-03-02 15:00Z (10:00 EST).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner, Result

from c3n_bot.cli import app
from c3n_bot.service import schedules
from c3n_bot.service.errors import NotFound
from c3n_bot.service.preview import PreviewLine, preview, table
from c3n_bot.store.base import Purpose
from c3n_bot.store.db import make_engine, make_session_factory
from c3n_bot.store.models import (
    Appointment,
    Center,
    Consent,
    Contact,
    DueWork,
    Patient,
    Schedule,
    ScheduleTemplate,
)
from c3n_bot.store.models.scheduling import AppointmentStatus, DueStatus
from tests.builders import link, make_center, make_contact, make_identity, make_patient
from tests.conftest import FIXED_NOW, sqlalchemy_url

SUNDAYS = "FREQ=WEEKLY;BYDAY=SU"
QUIET = "quiet hours 21:00-08:00 (America/New_York)"
BEFORE_DST = datetime(2026, 2, 28, 15, 0, tzinfo=UTC)  # Saturday 10:00 EST


@dataclass
class Home:
    """A center, a patient, and the parent who reports for them."""

    center: Center
    patient: Patient
    parent: Contact


def consent(db: Session, contact: Contact, purpose: Purpose, now: datetime, granted: bool) -> None:
    """Record the contact's answer for a purpose."""
    db.add(
        Consent(
            contact_id=contact.id, purpose=purpose, granted=granted, source="test", updated_at=now
        )
    )
    db.flush()


@pytest.fixture
def home(db: Session, now: datetime) -> Home:
    """A 13-year-old in New York whose parent consented to prompts and reminders."""
    center = make_center(db, now=now)
    patient = make_patient(db, now=now, center=center)
    parent = make_contact(db, now=now)
    make_identity(db, contact=parent, now=now)
    link(db, contact=parent, patient=patient)
    consent(db, parent, Purpose.PRO_REPORTS, now, True)
    consent(db, parent, Purpose.VISIT_REMINDERS, now, True)
    return Home(center=center, patient=patient, parent=parent)


def schedule(
    db: Session,
    home: Home,
    now: datetime,
    *,
    flow: str = "ibd_checkin",
    rule: str = SUNDAYS,
    at: str = "18:00",
    min_age: int | None = None,
) -> Schedule:
    """A schedule of the home's patient, created at ``now``."""
    return schedules.create_schedule(
        db, patient=home.patient, flow_id=flow, rrule=rule, at_local=at, now=now, min_age=min_age
    )


def run(db: Session, home: Home, now: datetime, days: int = 14) -> list[PreviewLine]:
    """The preview of the home's patient."""
    return preview(
        db, patient_id=home.patient.id, days=days, now=now, allowed_centers={home.center.id}
    )


def utc(iso: str | None) -> datetime:
    """The UTC instant of an ISO time with offset."""
    assert iso is not None
    return datetime.fromisoformat(iso).astimezone(UTC)


def due_row(home: Home, flow: str, at: datetime, **fields: object) -> DueWork:
    """An unsaved due row of the home's patient for ``at``."""
    values: dict[str, object] = {
        "key": f"test:{uuid.uuid4()}",
        "kind": "prompt",
        "priority": 60,
        "patient_id": home.patient.id,
        "contact_id": home.parent.id,
        "flow_id": flow,
        "slot_at": at,
        "due_at": at,
        "status": DueStatus.PENDING,
        "detail": {},
        "created_at": at - timedelta(days=1),
    }
    values.update(fields)
    return DueWork(**values)


def test_sunday_1800_stays_at_1800_local_across_the_dst_change(db: Session, home: Home) -> None:
    schedule(db, home, BEFORE_DST)

    lines = run(db, home, BEFORE_DST)

    assert [line.planned_local for line in lines] == [
        "2026-03-01T18:00:00-05:00",
        "2026-03-08T18:00:00-04:00",
    ]
    assert [utc(line.send_local).hour for line in lines] == [23, 22]
    assert {(line.status, line.reason, line.source, line.kind) for line in lines} == {
        ("will send", None, "schedule", "prompt")
    }
    assert {line.timezone for line in lines} == {"America/New_York"}


def test_a_slot_in_quiet_hours_is_deferred_to_0800_the_next_day(
    db: Session, home: Home, now: datetime
) -> None:
    schedule(db, home, now, at="22:00")

    [line] = run(db, home, now, days=7)

    assert line.planned_local == "2026-03-08T22:00:00-04:00"
    assert line.send_local == "2026-03-09T08:00:00-04:00"
    assert line.status == "deferred"
    assert line.reason == f"deferred to Mon 2026-03-09 08:00: {QUIET}"


@pytest.mark.parametrize(
    ("start", "end", "sends", "reason"),
    [
        ("22:30", "07:00", "2026-03-08T22:00:00-04:00", None),
        (
            "21:30",
            "09:00",
            "2026-03-09T09:00:00-04:00",
            "deferred to Mon 2026-03-09 09:00: quiet hours 21:30-09:00 (America/New_York)",
        ),
    ],
)
def test_the_familys_own_quiet_hours_override_the_centers(
    db: Session, home: Home, now: datetime, start: str, end: str, sends: str, reason: str | None
) -> None:
    home.parent.quiet_hours_start, home.parent.quiet_hours_end = start, end
    schedule(db, home, now, at="22:00")

    [line] = run(db, home, now, days=7)

    assert (line.send_local, line.reason) == (sends, reason)


def test_the_fourth_prompt_of_a_day_waits_for_the_next_day(
    db: Session, home: Home, now: datetime
) -> None:
    for flow, at in [("ibd_checkin", "10:00"), ("phq9", "11:00"), ("gad7", "12:00")]:
        schedule(db, home, now, flow=flow, at=at)
    schedule(db, home, now, flow="pucai", at="13:00")

    lines = run(db, home, now, days=7)

    assert [(line.flow_id, line.status) for line in lines] == [
        ("ibd_checkin", "will send"),
        ("phq9", "will send"),
        ("gad7", "will send"),
        ("pucai", "deferred"),
    ]
    assert lines[3].send_local == "2026-03-09T08:00:00-04:00"
    assert lines[3].reason == "deferred to Mon 2026-03-09 08:00: daily cap of 3 prompts reached"


def test_prompts_already_sent_today_count_toward_the_cap(
    db: Session, home: Home, now: datetime
) -> None:
    for minutes in (30, 60):
        sent = now - timedelta(minutes=minutes)
        db.add(due_row(home, "phq9", sent, status=DueStatus.DONE, done_at=sent))
    schedule(db, home, now, flow="ibd_checkin", rule="FREQ=DAILY", at="18:00")
    schedule(db, home, now, flow="gad7", rule="FREQ=DAILY", at="19:00")

    lines = run(db, home, now, days=1)

    assert [(line.flow_id, line.send_local) for line in lines] == [
        ("ibd_checkin", "2026-03-02T18:00:00-05:00"),
        ("gad7", "2026-03-03T08:00:00-05:00"),
    ]
    assert lines[1].reason is not None and "daily cap of 3 prompts reached" in lines[1].reason


def test_a_patient_under_12_gets_no_phq9_until_their_birthday(
    db: Session, home: Home, now: datetime
) -> None:
    home.patient.birth_date = date(2014, 3, 10)  # 12 on Tuesday 2026-03-10
    schedule(db, home, now, flow="phq9", min_age=12)

    lines = run(db, home, now)

    assert [(line.planned_local[:10], line.status, line.reason) for line in lines] == [
        ("2026-03-08", "not sent", "not sent: the patient is younger than 12"),
        ("2026-03-15", "will send", None),
    ]
    assert lines[0].send_local is None


def test_paused_patient_gets_no_prompts_but_still_visit_reminders(
    db: Session, home: Home, now: datetime
) -> None:
    schedule(db, home, now)
    visit = Appointment(
        patient_id=home.patient.id,
        starts_at=datetime(2026, 3, 10, 14, 0, tzinfo=UTC),
        status=AppointmentStatus.BOOKED,
        created_at=now,
        updated_at=now,
    )
    db.add(visit)
    db.flush()
    reminder_at = datetime(2026, 3, 9, 22, 0, tzinfo=UTC)  # 18:00 EDT the day before
    db.add(
        due_row(home, "visit_reminder", reminder_at, kind="visit_reminder", appointment_id=visit.id)
    )
    home.patient.schedules_paused = True

    lines = run(db, home, now, days=14)

    assert [(line.flow_id, line.source, line.status, line.reason) for line in lines] == [
        ("ibd_checkin", "schedule", "not sent", "not sent: the patient's schedules are paused"),
        ("visit_reminder", "appointment", "will send", None),
        ("ibd_checkin", "schedule", "not sent", "not sent: the patient's schedules are paused"),
    ]


def test_a_paused_schedule_is_shown_as_not_sent(db: Session, home: Home, now: datetime) -> None:
    schedule(db, home, now).active = False

    lines = run(db, home, now)

    assert {(line.status, line.reason) for line in lines} == {
        ("not sent", "not sent: the schedule is paused")
    }
    assert len(lines) == 2


@pytest.mark.parametrize("answer", [None, False])
def test_no_consent_for_prompts_means_not_sent(
    db: Session, now: datetime, answer: bool | None
) -> None:
    center = make_center(db, now=now)
    patient = make_patient(db, now=now, center=center)
    parent = make_contact(db, now=now)
    make_identity(db, contact=parent, now=now)
    link(db, contact=parent, patient=patient)
    if answer is not None:
        consent(db, parent, Purpose.PRO_REPORTS, now, answer)
    home = Home(center=center, patient=patient, parent=parent)
    schedule(db, home, now)

    lines = run(db, home, now)

    assert {line.reason for line in lines} == {"not sent: no consent for pro_reports"}


def test_a_family_that_stopped_every_channel_gets_nothing(
    db: Session, home: Home, now: datetime
) -> None:
    for identity in home.parent.identities:
        identity.stopped_at = now
    schedule(db, home, now)

    lines = run(db, home, now)

    assert {line.reason for line in lines} == {
        "not sent: the family has no reachable channel (stopped)"
    }


def test_open_due_work_is_replayed_and_materialized_slots_are_not_repeated(
    db: Session, home: Home, now: datetime
) -> None:
    sunday = datetime(2026, 3, 8, 22, 0, tzinfo=UTC)
    schedule(db, home, now)
    schedules.materialize(db, sunday - timedelta(minutes=1))  # the Sunday slot is now a row
    slot = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Sunday 21:00 EST, deferred by the clock
    db.add(
        due_row(
            home,
            "gad7",
            slot,
            due_at=now + timedelta(hours=3),
            status=DueStatus.DEFERRED,
            reason="waiting for the family's active conversation",
        )
    )
    db.add(due_row(home, "phq9", now - timedelta(hours=7)))  # the clock was down too long
    db.add(due_row(home, "pucai", now - timedelta(hours=7), kind="flow"))  # behind a session
    db.flush()
    later = sunday - timedelta(minutes=1)

    lines = run(db, home, now)
    from_later = run(db, home, later, days=8)

    materialized = select(func.count()).where(DueWork.flow_id == "ibd_checkin")
    assert db.scalar(materialized) == 1

    assert [(line.flow_id, line.status) for line in lines] == [
        ("phq9", "not sent"),
        ("pucai", "will send"),
        ("gad7", "deferred"),
        ("ibd_checkin", "will send"),
        ("ibd_checkin", "will send"),
    ]
    assert lines[0].reason == "not sent: missed: the clock was down past the grace"
    assert (lines[1].source, lines[1].send_local) == ("queued", "2026-03-02T10:00:00-05:00")
    assert lines[2].reason == (
        "deferred to Mon 2026-03-02 13:00: waiting for the family's active conversation"
    )
    checkins = [line for line in from_later if line.flow_id == "ibd_checkin"]
    assert [(line.planned_local, line.source, line.status) for line in checkins] == [
        ("2026-03-08T18:00:00-04:00", "schedule", "will send"),  # once, from its due row
        ("2026-03-15T18:00:00-04:00", "schedule", "will send"),
    ]


def test_the_preview_writes_nothing(db: Session, home: Home, now: datetime) -> None:
    schedule(db, home, now, at="22:00")
    db.commit()

    run(db, home, now, days=90)

    assert not db.new and not db.dirty
    assert db.scalar(select(func.count()).select_from(DueWork)) == 0


def test_another_centers_patient_is_not_found(db: Session, home: Home, now: datetime) -> None:
    with pytest.raises(NotFound):
        preview(db, patient_id=home.patient.id, days=14, now=now, allowed_centers={uuid.uuid4()})


def test_the_table_reads_in_local_time(db: Session, home: Home, now: datetime) -> None:
    schedule(db, home, now, at="22:00")

    text = table(run(db, home, now, days=7))

    assert text[0].split() == ["planned", "(local)", "sends", "(local)", "flow", "status", "reason"]
    assert text[1].startswith("Sun 2026-03-08 22:00 EDT  Mon 2026-03-09 08:00 EDT  ibd_checkin")
    assert text[1].endswith(f"deferred to Mon 2026-03-09 08:00: {QUIET}")
    assert table([])[-1] == "(nothing would be sent)"


# -- the command line -----------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Undo the logging set-up each command does onto the runner's (then closed) stderr."""
    root, alembic = logging.getLogger(), logging.getLogger("alembic")
    handlers, level, alembic_level = root.handlers[:], root.level, alembic.level
    yield
    root.handlers[:], root.level = handlers, level
    alembic.setLevel(alembic_level)


def cli(args: list[str], database_url: str) -> Result:
    """Run c3n-bot in demo mode on the test's database, at the fixed time."""
    env = {"C3N_DATABASE_URL": database_url, "C3N_DEMO": "1"}
    with time_machine.travel(FIXED_NOW, tick=False):
        return CliRunner().invoke(app, args, env=env)


def demo_patient_id(database_url: str, given_name: str) -> uuid.UUID:
    """The id of a demo patient, read in a session of its own."""
    engine = make_engine(sqlalchemy_url(database_url))
    try:
        with make_session_factory(engine)() as db:
            return db.scalars(select(Patient.id).where(Patient.given_name == given_name)).one()
    finally:
        engine.dispose()


def forget_default_schedules(database_url: str) -> None:
    """Delete the schedules and templates the demo seeded, as on a site that predates them."""
    engine = make_engine(sqlalchemy_url(database_url))
    try:
        with make_session_factory(engine)() as db, db.begin():
            db.execute(delete(Schedule))
            db.execute(delete(ScheduleTemplate))
    finally:
        engine.dispose()


@pytest.mark.usefixtures("clean_env", "restore_logging")
def test_cli_applies_defaults_idempotently_and_previews(database_url: str) -> None:
    assert cli(["demo"], database_url).exit_code == 0
    forget_default_schedules(database_url)

    first = cli(["schedule", "apply-defaults"], database_url)
    again = cli(["schedule", "apply-defaults", "--center", "riverside"], database_url)
    shown = cli(
        ["schedule", "preview", "--patient", str(demo_patient_id(database_url, "Daniel"))]
        + ["--days", "14"],
        database_url,
    )

    assert first.exit_code == 0, first.output
    # Per center: 8 templates (IBD 4, CF 2, T1D 2); 3 recurring per IBD patient, else 2.
    assert first.output == (
        "2 center(s): 16 default template(s) added, 48 schedule(s) created for 20 patient(s).\n"
    )
    assert again.output == (
        "1 center(s): 0 default template(s) added, 0 schedule(s) created for 10 patient(s).\n"
    )
    assert shown.exit_code == 0, shown.output
    rows = shown.output.splitlines()
    assert rows[0].endswith("the next 14 days from 2026-03-02 15:00 UTC")
    assert rows[1].split()[:5] == ["planned", "(local)", "sends", "(local)", "flow"]
    # The weekly check-in; GAD-7 and PHQ-9 (every 6 months) start a week out, days apart.
    assert [re.split(r"\s{2,}", row) for row in rows[2:]] == [
        ["Sun 2026-03-08 18:00 EDT", "Sun 2026-03-08 18:00 EDT", "ibd_checkin", "will send"],
        ["Mon 2026-03-09 18:00 EDT", "Mon 2026-03-09 18:00 EDT", "gad7", "will send"],
        ["Wed 2026-03-11 18:00 EDT", "Wed 2026-03-11 18:00 EDT", "phq9", "will send"],
        ["Sun 2026-03-15 18:00 EDT", "Sun 2026-03-15 18:00 EDT", "ibd_checkin", "will send"],
    ]


@pytest.mark.usefixtures("clean_env", "restore_logging")
def test_cli_names_what_it_cannot_find(database_url: str) -> None:
    cli(["demo"], database_url)

    patient = cli(["schedule", "preview", "--patient", str(uuid.uuid4())], database_url)
    center = cli(["schedule", "apply-defaults", "--center", "nowhere"], database_url)
    days = cli(
        ["schedule", "preview", "--patient", str(uuid.uuid4()), "--days", "91"], database_url
    )

    assert patient.exit_code == 1 and "no patient with id" in patient.output
    assert center.exit_code == 1 and "unknown center: nowhere" in center.output
    assert days.exit_code == 2
