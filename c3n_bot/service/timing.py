"""Pure time logic of schedules, reminders and deferrals, in each family's own timezone.

No database and no clock reads: the caller passes ``now``. Instants are aware datetimes (UTC in
and out); local wall times are naive and belong to an IANA timezone name.

Wall-time rule (see :mod:`c3n_bot.service.recurrence`): an ambiguous local time (fall back)
is its FIRST occurrence; a nonexistent one (spring forward) is shifted forward by the length of
the gap (02:30 on the US spring-forward day is 03:30 EDT). Either way it happens exactly once.

This module gathers the public API; recurrences live in ``recurrence``, quiet hours and the
daily cap in ``quiet_hours``, and catch-up, visit reminders and age rules here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Literal

from c3n_bot.service.quiet_hours import (
    QuietHours,
    defer_for_cap,
    defer_for_quiet_hours,
    first_allowed_on,
)
from c3n_bot.service.recurrence import (
    WallStatus,
    as_utc,
    load_zone,
    local_to_utc,
    next_slots,
    slot_key,
    validate_rule,
    wall_status,
)

__all__ = [
    "DEFAULT_GRACE",
    "CatchUp",
    "QuietHours",
    "WallStatus",
    "age_on",
    "as_utc",
    "catch_up",
    "defer_for_cap",
    "defer_for_quiet_hours",
    "due_by_age",
    "first_allowed_on",
    "load_zone",
    "local_to_utc",
    "next_slots",
    "pre_visit_time",
    "reminder_times",
    "slot_key",
    "validate_rule",
    "wall_status",
]

CatchUp = Literal["due", "missed", "future"]
DEFAULT_GRACE = timedelta(hours=6)
REMINDER_AT = time(18, 0)


def catch_up(slot_utc: datetime, now_utc: datetime, grace: timedelta = DEFAULT_GRACE) -> CatchUp:
    """What to do with a slot at ``now``: "future", "due" (late by less than ``grace``), "missed".

    A slot exactly ``grace`` old is missed; a slot exactly at ``now`` is due.
    """
    if grace < timedelta(0):
        raise ValueError("grace must not be negative")
    slot, now = as_utc(slot_utc), as_utc(now_utc)
    if slot > now:
        return "future"
    return "due" if now - slot < grace else "missed"


def reminder_times(
    visit_start_utc: datetime,
    tz: str,
    offsets_days: Sequence[int] = (7, 1),
    at_local: time = REMINDER_AT,
) -> list[tuple[int, datetime]]:
    """``(offset, UTC instant)`` of each reminder, earliest first, for a visit at ``visit_start``.

    A reminder is at ``at_local`` on the local date ``offset`` days before the visit's local
    date (DST-correct, by the wall-time rule). Reminders at or after the visit start are
    skipped; ones already in the past are returned (the caller decides with :func:`catch_up`).
    """
    if at_local.tzinfo is not None:
        raise ValueError("at_local is a local wall time: pass a naive time")
    zone, start = load_zone(tz), as_utc(visit_start_utc)
    visit_day = start.astimezone(zone).date()
    reminders: list[tuple[int, datetime]] = []
    for offset in sorted(set(offsets_days), reverse=True):
        if offset < 0:
            raise ValueError(f"reminder offsets are days before the visit, got {offset}")
        instant = local_to_utc(datetime.combine(visit_day - timedelta(days=offset), at_local), zone)
        if instant < start:
            reminders.append((offset, instant))
    return reminders


def pre_visit_time(
    visit_start_utc: datetime,
    tz: str,
    days_before: int = 3,
    at_local: time = REMINDER_AT,
) -> datetime | None:
    """The UTC instant of the pre-visit prompt (PUCAI); None if it would not precede the visit."""
    times = reminder_times(visit_start_utc, tz, (days_before,), at_local)
    return times[0][1] if times else None


def age_on(birth_date: date, on: date) -> int:
    """Age in whole years on ``on``; ValueError if ``on`` is before the birth.

    Born on 29 February, one turns a year older on 1 March in common years.
    """
    if on < birth_date:
        raise ValueError(f"{on.isoformat()} is before the birth date {birth_date.isoformat()}")
    before_birthday = (on.month, on.day) < (birth_date.month, birth_date.day)
    return on.year - birth_date.year - before_birthday


def due_by_age(birth_date: date, slot_date: date, min_age: int) -> bool:
    """Whether a prompt with a minimum age (PHQ-9/GAD-7: 12) applies on ``slot_date``."""
    return slot_date >= birth_date and age_on(birth_date, slot_date) >= min_age
