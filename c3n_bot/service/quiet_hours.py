"""Quiet hours and the daily prompt cap: when a due message may actually go out.

Pure time logic (no database, no clock reads). Quiet hours are local wall-clock times in the
family's IANA timezone, ``start`` inclusive and ``end`` exclusive, and may wrap midnight
(21:00-08:00). A message due in quiet hours is deferred to the end of quiet hours, never dropped;
the end is resolved by the wall-time rule of :mod:`c3n_bot.service.recurrence` (a nonexistent
08:00 is shifted forward by the gap, an ambiguous one is its first occurrence still to come).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from c3n_bot.service.recurrence import as_utc, load_zone, local_date, local_to_utc

_DAY = timedelta(days=1)


@dataclass(frozen=True)
class QuietHours:
    """Local quiet hours from ``start`` (inclusive) to ``end`` (exclusive); equal means none."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("quiet hours are local wall times: pass naive times")

    @classmethod
    def parse(cls, start: str, end: str) -> QuietHours:
        """Quiet hours from ``"HH:MM"`` strings, as stored on centers and contacts."""
        return cls(time.fromisoformat(start), time.fromisoformat(end))

    @property
    def wraps(self) -> bool:
        """Whether the quiet period crosses midnight (e.g. 21:00-08:00)."""
        return self.start > self.end

    def contains(self, local: time) -> bool:
        """Whether the local wall time ``local`` falls in quiet hours."""
        wall = local.replace(tzinfo=None)
        if self.start == self.end:
            return False
        if self.wraps:
            return wall >= self.start or wall < self.end
        return self.start <= wall < self.end

    def describe(self) -> str:
        """``"21:00-08:00"``."""
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def defer_for_quiet_hours(
    when_utc: datetime, tz: str, quiet: QuietHours | None
) -> tuple[datetime, str | None]:
    """``(when, None)`` outside quiet hours; else the UTC end of quiet hours and the reason.

    The reason reads ``"quiet hours 21:00-08:00 (America/New_York)"``.
    """
    zone, when = load_zone(tz), as_utc(when_utc)
    local = when.astimezone(zone)
    if quiet is None or not quiet.contains(local.time()):
        return when, None
    end_day = local.date() + _DAY if quiet.wraps and local.time() >= quiet.start else local.date()
    end = _wall_at_or_after(datetime.combine(end_day, quiet.end), zone, when)
    return end, f"quiet hours {quiet.describe()} ({tz})"


def defer_for_cap(
    when_utc: datetime,
    tz: str,
    already_today: Sequence[datetime],
    cap: int,
    quiet: QuietHours | None = None,
) -> tuple[datetime, str | None]:
    """When a prompt may go out under quiet hours and a cap of ``cap`` prompts per local day.

    ``already_today`` are the UTC sends of prompts to this family (any days may be included:
    they are counted per local calendar day). A day that already has ``cap`` prompts pushes the
    prompt to the next local day's first allowed time (end of quiet hours, or 00:00 local when
    00:00 is not quiet), until a day has room. Reasons of every deferral are joined by "; ".
    """
    if cap < 1:
        raise ValueError("the daily cap must be at least 1")
    zone = load_zone(tz)
    at, quiet_reason = defer_for_quiet_hours(when_utc, tz, quiet)
    reasons = [quiet_reason] if quiet_reason else []
    per_day = Counter(local_date(sent, zone) for sent in already_today)
    capped = False
    while per_day[local_date(at, zone)] >= cap:
        capped = True
        at = first_allowed_on(local_date(at, zone) + _DAY, tz, quiet)
    if capped:
        reasons.append(f"daily cap of {cap} prompts reached")
    return at, "; ".join(reasons) or None


def first_allowed_on(day: date, tz: str, quiet: QuietHours | None) -> datetime:
    """The first UTC instant of local ``day`` outside quiet hours (00:00 local, or the end)."""
    midnight = local_to_utc(datetime.combine(day, time(0, 0)), load_zone(tz))
    return defer_for_quiet_hours(midnight, tz, quiet)[0]


def _wall_at_or_after(wall: datetime, zone: tzinfo, not_before: datetime) -> datetime:
    """The instant of ``wall`` by the wall-time rule, or its repeat if that is still to come.

    On a fall-back night an ambiguous end of quiet hours seen from its second pass (e.g. at
    01:10 EST with quiet hours ending 01:30) is the second 01:30, never an instant in the past.
    """
    for fold in (0, 1):
        instant = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if instant >= not_before:
            return instant
    return not_before  # pragma: no cover - local time is before the end, so one is ahead
