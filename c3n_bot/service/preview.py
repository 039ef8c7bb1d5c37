"""What would be sent to a family, and when, in their own time: a dry run of the clock.

``preview`` lists the slots of the patient's schedules and the open due work (visit reminders,
pre-visit prompts, deferred prompts) in a window, then replays them in time order through the
same rules the clock's ``run_due`` applies: refusals (paused, under age, no consent, every
channel stopped), quiet hours, and the daily prompt cap (counting the sends of the preview and
the real sends already done). Arbitration with a live conversation cannot be foreseen and is
not shown. Nothing is written.
"""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.service import patients, timing

# The clock's own rules, imported, never copied, so the preview cannot drift from the clock.
from c3n_bot.service.due import (
    CAPPED,
    GRACE,
    OPEN,
    quiet_hours_of,
    refusal,
    reporter,
    sent_recently,
)
from c3n_bot.service.schedules import PRIORITY
from c3n_bot.store.models import Contact, DueWork, Patient, Schedule
from c3n_bot.store.models.scheduling import DueStatus

Source = Literal["schedule", "appointment", "queued"]
Status = Literal["will send", "deferred", "not sent"]
MAX_DAYS = 90
# A prompt deferred more often than this is shown as deferred past the preview (never loops).
_MAX_DEFERRALS = 60


@dataclass(frozen=True)
class PreviewLine:
    """One message the clock would send (or would not), in the family's local time."""

    planned_local: str  # ISO 8601 with the UTC offset: when it is planned
    send_local: str | None  # when it would go, after any deferral; None when not sent
    timezone: str  # the family's IANA timezone the times are shown in
    flow_id: str
    kind: str  # prompt, visit_reminder, pre_visit, invitation, flow
    source: Source
    status: Status
    reason: str | None


@dataclass
class _Item:
    """One candidate send on its way through the simulated clock."""

    work: DueWork  # a real open row, or an unsaved one standing for a schedule slot
    source: Source
    planned: datetime
    active: bool = True  # False for a slot of a paused schedule
    deferrals: list[str] = field(default_factory=list)


@dataclass
class _Replay:
    """The state of one simulation: who reports, and the prompts each contact got per day."""

    db: Session
    patient: Patient
    now: datetime
    reporters: dict[uuid.UUID | None, Contact | None] = field(default_factory=dict)
    sent: dict[uuid.UUID, list[datetime]] = field(default_factory=dict)

    def reporter_of(self, work: DueWork) -> Contact | None:
        if work.contact_id not in self.reporters:
            self.reporters[work.contact_id] = reporter(self.db, work, self.patient)
        return self.reporters[work.contact_id]

    def sends_of(self, contact: Contact) -> list[datetime]:
        if contact.id not in self.sent:
            self.sent[contact.id] = sent_recently(self.db, contact.id, self.now)
        return self.sent[contact.id]


def preview(
    db: Session, *, patient_id: uuid.UUID, days: int, now: datetime, allowed_centers: set[uuid.UUID]
) -> list[PreviewLine]:
    """What would be sent in ``(now, now + days]``, sorted by send time; NotFound outside scope."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be 1..{MAX_DAYS}")
    patient = patients.get_patient(db, patient_id=patient_id, allowed_centers=allowed_centers)
    end = now + timedelta(days=days)
    replay = _Replay(db=db, patient=patient, now=now)
    lines: list[tuple[datetime, PreviewLine]] = []
    queue: list[tuple[datetime, int, int, _Item]] = []
    for seq, item in enumerate(_candidates(db, patient, now, end)):
        if not item.active:
            lines.append((item.planned, _refused(replay, item, "the schedule is paused")))
        elif item.work.kind != "flow" and timing.catch_up(item.work.due_at, now, GRACE) == "missed":
            lines.append((now, _refused(replay, item, "missed: the clock was down past the grace")))
        else:
            at = max(item.work.due_at, now)
            heapq.heappush(queue, (at, -item.work.priority, seq, item))
    while queue:
        at, order, seq, item = heapq.heappop(queue)
        later, line = _step(replay, item, at)
        if line is not None:
            lines.append((at, line))
        elif later is not None:
            heapq.heappush(queue, (later, order, seq, item))
    lines.sort(key=lambda pair: pair[0])
    return [line for _, line in lines]


def _candidates(db: Session, patient: Patient, now: datetime, end: datetime) -> Iterator[_Item]:
    """Schedule slots not yet materialized, then the patient's open due work in the window."""
    schedules = db.scalars(
        select(Schedule)
        .where(Schedule.patient_id == patient.id)
        .order_by(Schedule.created_at, Schedule.flow_id, Schedule.id)
    ).all()
    for schedule in schedules:
        after = max(now, schedule.last_slot_at or now) if schedule.active else now
        dtstart = datetime.fromisoformat(schedule.dtstart_local)
        for slot in timing.next_slots(
            schedule.rrule, schedule.timezone, dtstart, after, end, limit=10_000
        ):
            work = _slot_work(schedule, slot)
            yield _Item(work=work, source="schedule", planned=slot, active=schedule.active)
    rows = db.scalars(
        select(DueWork)
        .where(
            DueWork.patient_id == patient.id,
            DueWork.status.in_(OPEN),
            DueWork.due_at <= end,
        )
        .order_by(DueWork.due_at, DueWork.flow_id, DueWork.key)
    ).all()
    for row in rows:
        source: Source = "appointment" if row.appointment_id is not None else "queued"
        if row.schedule_id is not None:
            source = "schedule"
        item = _Item(work=row, source=source, planned=row.slot_at)
        if row.reason and row.due_at > row.slot_at:
            item.deferrals.append(row.reason)  # deferred by the clock already
        yield item


def _slot_work(schedule: Schedule, slot: datetime) -> DueWork:
    """An unsaved due row for a slot, as ``schedules.materialize`` would write it."""
    return DueWork(
        key=timing.slot_key(str(schedule.id), slot),
        kind="prompt",
        priority=PRIORITY["prompt"],
        patient_id=schedule.patient_id,
        contact_id=schedule.contact_id,
        schedule_id=schedule.id,
        flow_id=schedule.flow_id,
        slot_at=slot,
        due_at=slot,
        status=DueStatus.PENDING,  # never added to the session: only the preview sees it
        detail={"min_age": schedule.min_age} if schedule.min_age else {},
    )


def _step(replay: _Replay, item: _Item, at: datetime) -> tuple[datetime | None, PreviewLine | None]:
    """What the clock does with ``item`` at ``at``: a final line, or the time to look again."""
    work, patient = item.work, replay.patient
    if work.kind == "flow":
        return None, _sent(replay, item, at, None)  # starts once the conversation ends
    contact = replay.reporter_of(work)
    refused = refusal(replay.db, work, patient, contact, at)
    if refused is not None or contact is None:
        return None, _refused(replay, item, refused or "no contact reports for the patient")
    quiet = quiet_hours_of(contact, patient)
    when, reason = timing.defer_for_quiet_hours(at, contact.timezone, quiet)
    if work.kind in CAPPED:
        cap = contact.daily_prompt_cap or patient.center.daily_prompt_cap
        sends = replay.sends_of(contact)
        when, cap_reason = timing.defer_for_cap(when, contact.timezone, sends, cap, quiet)
        reason = "; ".join(r for r in (reason, cap_reason) if r) or None
    if when > at:
        item.deferrals.append(reason or "deferred")
        if len(item.deferrals) < _MAX_DEFERRALS:
            return when, None
        at = when  # replayed long enough: show the last deferral without looking further
    if work.kind in CAPPED:
        replay.sends_of(contact).append(at)
    return None, _sent(replay, item, at, contact)


def _zone_name(replay: _Replay, contact: Contact | None) -> str:
    return contact.timezone if contact is not None else replay.patient.timezone


def _local(instant: datetime, tz: str) -> datetime:
    return timing.as_utc(instant).astimezone(timing.load_zone(tz))


def _sent(replay: _Replay, item: _Item, at: datetime, contact: Contact | None) -> PreviewLine:
    tz = _zone_name(replay, contact or replay.reporter_of(item.work))
    reason = None
    if item.deferrals:
        reasons = list(dict.fromkeys(r for text in item.deferrals for r in text.split("; ")))
        reason = f"deferred to {_local(at, tz):%a %Y-%m-%d %H:%M}: {'; '.join(reasons)}"
    return _line(item, tz, at, "deferred" if reason else "will send", reason)


def _refused(replay: _Replay, item: _Item, why: str) -> PreviewLine:
    tz = _zone_name(replay, replay.reporter_of(item.work))
    return _line(item, tz, None, "not sent", f"not sent: {why}")


def _line(
    item: _Item, tz: str, at: datetime | None, status: Status, reason: str | None
) -> PreviewLine:
    return PreviewLine(
        planned_local=_local(item.planned, tz).isoformat(),
        send_local=_local(at, tz).isoformat() if at is not None else None,
        timezone=tz,
        flow_id=item.work.flow_id,
        kind=item.work.kind,
        source=item.source,
        status=status,
        reason=reason,
    )


def table(lines: list[PreviewLine]) -> list[str]:
    """A plain-text table: planned and send times (local, with the zone), flow, status, reason."""
    header = ("planned (local)", "sends (local)", "flow", "status", "reason")
    rows = [
        (
            _short(line.planned_local, line.timezone),
            _short(line.send_local, line.timezone) if line.send_local else "-",
            line.flow_id,
            line.status,
            line.reason or "",
        )
        for line in lines
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    text = [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[4]])
        for row in [header, *rows]
    ]
    if not rows:
        text.append("(nothing would be sent)")
    return [line.rstrip() for line in text]


def _short(iso: str, tz: str) -> str:
    """``Sun 2026-03-08 18:00 EDT`` from an ISO instant, in ``tz``."""
    return f"{_local(datetime.fromisoformat(iso), tz):%a %Y-%m-%d %H:%M %Z}"
