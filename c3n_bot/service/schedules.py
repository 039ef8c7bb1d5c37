"""Schedules: center defaults per condition, and the clock's set-based materialization of slots."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from c3n_bot.service import timing
from c3n_bot.store.base import Condition
from c3n_bot.store.inserts import insert_ignoring_duplicates_bulk
from c3n_bot.store.models import DueWork, Patient, Schedule, ScheduleTemplate
from c3n_bot.store.models.scheduling import DueStatus

PRIORITY = {"safety": 100, "visit_reminder": 80, "prompt": 60, "invitation": 40}
BATCH = 5_000
# Slots are materialized a little ahead, so a slot is in the table before its minute comes.
LOOKAHEAD = timedelta(minutes=2)

DEFAULT_TEMPLATES: dict[Condition, list[dict[str, Any]]] = {
    Condition.IBD: [
        {"flow_id": "ibd_checkin", "anchor": "recurring", "rrule": "FREQ=WEEKLY;BYDAY=SU"},
        {"flow_id": "pucai", "anchor": "pre_visit", "days_before": 3},
        {"flow_id": "phq9", "anchor": "recurring", "rrule": "FREQ=MONTHLY;INTERVAL=6",
         "min_age": 12},
        {"flow_id": "gad7", "anchor": "recurring", "rrule": "FREQ=MONTHLY;INTERVAL=6",
         "min_age": 12},
    ],
    Condition.CF: [
        {"flow_id": "phq9", "anchor": "recurring", "rrule": "FREQ=YEARLY", "min_age": 12},
        {"flow_id": "gad7", "anchor": "recurring", "rrule": "FREQ=YEARLY", "min_age": 12},
    ],
    Condition.T1D: [
        {"flow_id": "phq9", "anchor": "recurring", "rrule": "FREQ=YEARLY", "min_age": 12},
        {"flow_id": "gad7", "anchor": "recurring", "rrule": "FREQ=YEARLY", "min_age": 12},
    ],
}  # fmt: skip


def ensure_center_defaults(db: Session, *, center_id: uuid.UUID, now: datetime) -> int:
    """Create the center's default templates that do not exist yet (editable afterwards)."""
    existing = {
        (t.condition, t.flow_id, t.anchor)
        for t in db.scalars(select(ScheduleTemplate).where(ScheduleTemplate.center_id == center_id))
    }
    added = 0
    for condition, specs in DEFAULT_TEMPLATES.items():
        for spec in specs:
            if (condition.value, spec["flow_id"], spec["anchor"]) in existing:
                continue
            db.add(
                ScheduleTemplate(
                    center_id=center_id,
                    condition=condition.value,
                    created_at=now,
                    at_local="18:00",
                    **spec,
                )
            )
            added += 1
    db.flush()
    return added


def apply_templates(db: Session, *, patient: Patient, now: datetime) -> list[Schedule]:
    """Give a patient the recurring schedules of their center's templates for their condition."""
    templates = db.scalars(
        select(ScheduleTemplate).where(
            ScheduleTemplate.center_id == patient.center_id,
            ScheduleTemplate.condition == patient.condition.value,
            ScheduleTemplate.anchor == "recurring",
            ScheduleTemplate.active.is_(True),
        )
    ).all()
    have = set(db.scalars(select(Schedule.template_id).where(Schedule.patient_id == patient.id)))
    created = []
    for index, template in enumerate(sorted(templates, key=lambda t: t.flow_id)):
        if template.id in have or template.rrule is None:
            continue
        created.append(
            create_schedule(
                db,
                patient=patient,
                flow_id=template.flow_id,
                rrule=template.rrule,
                at_local=template.at_local,
                now=now,
                template_id=template.id,
                min_age=template.min_age,
                first_day=_first_day(template, patient, now, index),
            )
        )
    return created


def _first_day(template: ScheduleTemplate, patient: Patient, now: datetime, index: int) -> date:
    # Screens every 6 or 12 months start a week out, a day apart, so a new patient is not
    # asked everything on one evening; an age rule starts on the birthday that meets it.
    today = now.astimezone(timing.load_zone(patient.timezone)).date()
    rule = template.rrule or ""
    if "FREQ=MONTHLY" not in rule and "FREQ=YEARLY" not in rule:
        return today
    first = today + timedelta(days=7 + index)
    if template.min_age:
        first = max(first, _birthday(patient.birth_date, template.min_age))
    return first


def _birthday(born: date, age: int) -> date:
    try:
        return born.replace(year=born.year + age)
    except ValueError:  # 29 February: the birthday is 1 March in a common year
        return date(born.year + age, 3, 1)


def create_schedule(
    db: Session,
    *,
    patient: Patient,
    flow_id: str,
    rrule: str,
    at_local: str,
    now: datetime,
    contact_id: uuid.UUID | None = None,
    template_id: uuid.UUID | None = None,
    min_age: int | None = None,
    first_day: date | None = None,
) -> Schedule:
    """A schedule in the patient's timezone; slots from `first_day` (default today) on."""
    rule = timing.validate_rule(rrule)
    zone = timing.load_zone(patient.timezone)
    wall = time.fromisoformat(at_local)
    day = first_day or now.astimezone(zone).date()
    dtstart = datetime.combine(day, time(wall.hour, wall.minute))
    schedule = Schedule(
        patient_id=patient.id,
        contact_id=contact_id,
        template_id=template_id,
        flow_id=flow_id,
        rrule=rule,
        timezone=patient.timezone,
        dtstart_local=dtstart.isoformat(),
        starts_at=now,
        min_age=min_age,
        active=True,
        last_slot_at=now,
        created_at=now,
    )
    schedule.next_due_at = _next_slot(rule, patient.timezone, dtstart.isoformat(), now)
    db.add(schedule)
    db.flush()
    return schedule


def materialize(db: Session, now: datetime, *, batch: int = BATCH) -> int:
    """Clock task: one query finds every due schedule; their slots become due work, once."""
    horizon = now + LOOKAHEAD
    created = 0
    while True:
        due = db.execute(
            select(
                Schedule.id,
                Schedule.patient_id,
                Schedule.contact_id,
                Schedule.flow_id,
                Schedule.rrule,
                Schedule.timezone,
                Schedule.dtstart_local,
                Schedule.last_slot_at,
                Schedule.starts_at,
                Schedule.min_age,
            )
            .where(Schedule.active.is_(True), Schedule.next_due_at <= horizon)
            .order_by(Schedule.next_due_at)
            .limit(batch)
        ).all()
        if not due:
            return created
        rows = list(_due_rows(due, horizon, now))
        created += insert_ignoring_duplicates_bulk(db, DueWork, rows)
        _advance(db, due, horizon)
        if len(due) < batch:
            return created


def _due_rows(due: Sequence[Any], horizon: datetime, now: datetime) -> Iterator[dict[str, Any]]:
    for row in due:
        after = row.last_slot_at or row.starts_at
        for slot in _slots(row.rrule, row.timezone, row.dtstart_local, after, horizon):
            yield {
                "id": uuid.uuid4(),
                "key": timing.slot_key(str(row.id), slot),
                "kind": "prompt",
                "priority": PRIORITY["prompt"],
                "patient_id": row.patient_id,
                "contact_id": row.contact_id,
                "schedule_id": row.id,
                "appointment_id": None,
                "flow_id": row.flow_id,
                "slot_at": slot,
                "due_at": slot,
                "status": DueStatus.PENDING,
                "reason": None,
                "detail": {"min_age": row.min_age} if row.min_age else {},
                "created_at": now,
                "done_at": None,
                "session_id": None,
            }


def _advance(db: Session, due: Sequence[Any], horizon: datetime) -> None:
    # Schedules sharing a rule, zone and start advance together: one UPDATE per group.
    groups: dict[tuple[str, str, str], list[uuid.UUID]] = {}
    for row in due:
        groups.setdefault((row.rrule, row.timezone, row.dtstart_local), []).append(row.id)
    for (rule, tz, dtstart), ids in groups.items():
        db.execute(
            update(Schedule)
            .where(Schedule.id.in_(ids))
            .values(last_slot_at=horizon, next_due_at=_next_slot(rule, tz, dtstart, horizon))
        )


@lru_cache(maxsize=4096)
def _slots(
    rule: str, tz: str, dtstart: str, after: datetime, until: datetime
) -> tuple[datetime, ...]:
    start = datetime.fromisoformat(dtstart)
    return tuple(timing.next_slots(rule, tz, start, after, until, limit=50))


@lru_cache(maxsize=4096)
def _next_slot(rule: str, tz: str, dtstart: str, after: datetime) -> datetime | None:
    start = datetime.fromisoformat(dtstart)
    found = timing.next_slots(rule, tz, start, after, after + timedelta(days=800), limit=1)
    return found[0] if found else None


def raw_insert(db: Session, rows: list[dict[str, Any]]) -> None:
    """A plain bulk insert of due work (the benchmark's baseline)."""
    db.execute(insert(DueWork), rows)
