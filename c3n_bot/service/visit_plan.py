"""Planning a visit's due work: reminders and pre-visit prompts, keyed by the visit's start.

- a ``visit_reminder`` at ``at_local`` (18:00) on the local day ``offset`` days before the visit,
  for each offset, in the patient's timezone (DST-correct, see :mod:`c3n_bot.service.timing`);
- a pre-visit prompt for each active ``pre_visit`` template of the patient's center and
  condition (IBD: PUCAI 3 days before).

Keys: ``appointment:<id>:reminder:<offset>d:<start>`` and ``appointment:<id>:pre:<flow>:<start>``
(``<start>`` is the visit's UTC start, ``YYYY-MM-DDTHH:MMZ``): a moved visit gets new rows, and
moving it back reopens its cancelled ones. Work already past when planned is not created.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from babel.dates import format_datetime
from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.service import timing
from c3n_bot.service.schedules import PRIORITY
from c3n_bot.store.models import Appointment, DueWork, Patient, ScheduleTemplate
from c3n_bot.store.models.scheduling import DueStatus

REMINDER_FLOW = "visit_reminder"
OPEN = (DueStatus.PENDING, DueStatus.DEFERRED)
# Babel locale and pattern of {visit_time}, per patient language (English when unknown).
VISIT_TIME_FORMATS = {
    "en": ("en_US", "EEEE, MMMM d 'at' h:mm a"),
    "es": ("es_US", "EEEE d 'de' MMMM 'a las' H:mm"),
}


@dataclass(frozen=True)
class _Planned:
    kind: str
    flow_id: str
    priority: int
    key: str
    due_at: datetime
    detail: dict[str, Any]


def visit_time_text(starts_at: datetime, tz: str, language: str) -> str:
    """The visit's local date and time as the family reads it ("Monday, March 9 at 9:00 AM")."""
    locale, pattern = VISIT_TIME_FORMATS.get(language, VISIT_TIME_FORMATS["en"])
    zone = timing.load_zone(tz)
    return format_datetime(timing.as_utc(starts_at), pattern, tzinfo=zone, locale=locale)


def open_work(db: Session, appointment_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[DueWork]]:
    """Pending and deferred work of each appointment, earliest first."""
    found: dict[uuid.UUID, list[DueWork]] = {key: [] for key in appointment_ids}
    if not appointment_ids:
        return found
    rows = db.scalars(
        select(DueWork)
        .where(DueWork.appointment_id.in_(appointment_ids), DueWork.status.in_(OPEN))
        .order_by(DueWork.due_at, DueWork.key)
    )
    for row in rows:
        if row.appointment_id is not None:
            found[row.appointment_id].append(row)
    return found


def cancel_open(db: Session, appointment_id: uuid.UUID, reason: str, now: datetime) -> None:
    """Cancel the appointment's pending and deferred work, saying why."""
    rows = db.scalars(
        select(DueWork).where(DueWork.appointment_id == appointment_id, DueWork.status.in_(OPEN))
    )
    for row in rows:
        row.status = DueStatus.CANCELLED
        row.reason = reason
        row.done_at = now


def plan(
    db: Session,
    appointment: Appointment,
    patient: Patient,
    now: datetime,
    offsets_days: Sequence[int],
    at_local: time,
) -> None:
    """Create (or reopen) the visit's reminders and pre-visit prompts still ahead of ``now``."""
    planned = _planned(db, appointment, patient, offsets_days, at_local)
    planned = [item for item in planned if item.due_at >= now]  # a past reminder is not sent
    if not planned:
        return
    existing = {
        row.key: row
        for row in db.scalars(select(DueWork).where(DueWork.key.in_([p.key for p in planned])))
    }
    for item in planned:
        row = existing.get(item.key)
        if row is None:
            row = DueWork(
                key=item.key,
                kind=item.kind,
                priority=item.priority,
                patient_id=patient.id,
                appointment_id=appointment.id,
                flow_id=item.flow_id,
                created_at=now,
            )
            db.add(row)
        elif row.status != DueStatus.CANCELLED:
            continue  # sent, missed or still open: the key makes it happen at most once
        row.slot_at = item.due_at
        row.due_at = item.due_at
        row.status = DueStatus.PENDING
        row.reason = None
        row.done_at = None
        row.detail = item.detail
    db.flush()


def _planned(
    db: Session,
    appointment: Appointment,
    patient: Patient,
    offsets_days: Sequence[int],
    at_local: time,
) -> list[_Planned]:
    start = timing.as_utc(appointment.starts_at)
    stamp = start.strftime("%Y-%m-%dT%H:%MZ")
    values = {
        "appointment_id": str(appointment.id),
        "visit_time": visit_time_text(start, patient.timezone, patient.language),
        "child": patient.given_name,
        "center": patient.center.name,
    }
    planned = [
        _Planned(
            kind="visit_reminder",
            flow_id=REMINDER_FLOW,
            priority=PRIORITY["visit_reminder"],
            key=f"appointment:{appointment.id}:reminder:{offset}d:{stamp}",
            due_at=instant,
            detail={"values": values, "offset_days": offset},
        )
        for offset, instant in timing.reminder_times(
            start, patient.timezone, offsets_days, at_local
        )
    ]
    templates = db.scalars(
        select(ScheduleTemplate).where(
            ScheduleTemplate.center_id == patient.center_id,
            ScheduleTemplate.condition == patient.condition.value,
            ScheduleTemplate.anchor == "pre_visit",
            ScheduleTemplate.active.is_(True),
        )
    )
    for template in templates:
        if template.days_before is None:
            continue
        wall = time.fromisoformat(template.at_local)
        due = timing.pre_visit_time(start, patient.timezone, template.days_before, wall)
        if due is None:
            continue
        detail: dict[str, Any] = {"values": {"appointment_id": values["appointment_id"]}}
        if template.min_age:
            detail["min_age"] = template.min_age
        planned.append(
            _Planned(
                kind="pre_visit",
                flow_id=template.flow_id,
                priority=PRIORITY["prompt"],
                key=f"appointment:{appointment.id}:pre:{template.flow_id}:{stamp}",
                due_at=due,
                detail=detail,
            )
        )
    return planned
