"""Recurring schedules in a family's own wall-clock time, converted to UTC instants.

Pure time logic: no database and no clock reads (every "now" is an argument). A schedule is an
RFC 5545 RRULE expanded in LOCAL wall time from a naive local ``DTSTART``; each local occurrence
becomes one UTC instant by the wall-time rule below, so an 18:00 prompt stays at 18:00 local
across both DST changes.

The wall-time rule (PEP 495 ``fold=0``), used everywhere a local wall time becomes an instant:

* **ambiguous** (fall back: 01:30 happens twice) -> the FIRST occurrence, e.g. 01:30 EDT;
* **nonexistent** (spring forward: 02:00-02:59 is skipped) -> read with the offset in force
  before the gap, i.e. shifted forward by the length of the gap: 02:30 -> 03:30 EDT.

Every occurrence therefore fires exactly once: never twice, never not at all. Two occurrences
that land on the same instant (02:30 shifted onto an existing 03:30) fire once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rrulestr

WallStatus = Literal["ok", "gap", "ambiguous"]

# Long enough to cover any UTC offset change (Pacific/Apia skipped a whole day in 2011).
_MARGIN = timedelta(days=2)
_FREQS = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
_TOO_FINE = ("HOURLY", "MINUTELY", "SECONDLY")
# RFC 5545 integer parts: (lowest, highest, negative values allowed).
_INT_PARTS = {
    "INTERVAL": (1, 10_000, False), "COUNT": (1, 1_000_000, False),
    "BYSECOND": (0, 0, False), "BYMINUTE": (0, 59, False), "BYHOUR": (0, 23, False),
    "BYMONTHDAY": (1, 31, True), "BYYEARDAY": (1, 366, True), "BYWEEKNO": (1, 53, True),
    "BYMONTH": (1, 12, False), "BYSETPOS": (1, 366, True),
}  # fmt: skip
_SINGLE = frozenset({"INTERVAL", "COUNT"})
_DAY = r"(SU|MO|TU|WE|TH|FR|SA)"
_BYDAY = re.compile(rf"[+-]?([1-9]|[1-4][0-9]|5[0-3])?{_DAY}")
_UNTIL = re.compile(r"(\d{8})(?:T(\d{6})(Z?))?")
_CHECK_FROM = datetime(9980, 1, 1)  # a rule that never fires would otherwise loop to year 9999


@dataclass(frozen=True)
class _Rule:
    """A validated rule: its canonical text, the text dateutil expands, and a UTC end if any."""

    canonical: str
    local_text: str
    until_utc: datetime | None
    period: timedelta | None  # a shift of DTSTART by whole periods keeps the later occurrences


def load_zone(tz: str) -> ZoneInfo:
    """The IANA timezone ``tz``; ValueError for an unknown name."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone {tz!r}") from exc


def as_utc(instant: datetime) -> datetime:
    """An aware instant in UTC; ValueError for a naive datetime (ambiguous by design)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got naive {instant.isoformat()}")
    return instant.astimezone(UTC)


def local_to_utc(wall: datetime, zone: tzinfo) -> datetime:
    """The UTC instant of a naive local wall time, by the wall-time rule in the module doc."""
    if wall.tzinfo is not None:
        raise ValueError("expected a naive local wall time")
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def wall_status(wall: datetime, zone: tzinfo) -> WallStatus:
    """Whether a naive wall time exists once ("ok"), not at all ("gap") or twice ("ambiguous")."""
    first = wall.replace(tzinfo=zone, fold=0)
    if first.utcoffset() == wall.replace(tzinfo=zone, fold=1).utcoffset():
        return "ok"
    round_trip = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    return "ambiguous" if round_trip == wall else "gap"


def slot_key(schedule_id: str, slot_utc: datetime) -> str:
    """The stable unique key of one slot: ``schedule:<id>:<YYYY-MM-DDTHH:MMZ>``."""
    return f"schedule:{schedule_id}:{as_utc(slot_utc).strftime('%Y-%m-%dT%H:%MZ')}"


def validate_rule(rule: str) -> str:
    """The canonical form of an RRULE (FREQ first, upper case); ValueError says what is wrong.

    Accepts the RFC 5545 parts with FREQ DAILY, WEEKLY, MONTHLY or YEARLY (a prompt more often
    than daily is refused), an optional ``RRULE:`` prefix, and UNTIL as a date (inclusive, local),
    a floating local date-time or a UTC date-time (``...Z``). A rule that never fires is refused.
    """
    return _parse_rule(rule).canonical


def next_slots(
    rule: str,
    tz: str,
    dtstart_local: datetime,
    after: datetime,
    until: datetime,
    limit: int,
) -> list[datetime]:
    """The first ``limit`` UTC instants of ``rule`` with ``after < instant <= until``, ascending.

    The rule is expanded in ``tz`` wall time from ``dtstart_local`` (naive, on a whole minute);
    each occurrence is converted by the wall-time rule, duplicates collapse into one.
    """
    parsed, zone = _parse_rule(rule), load_zone(tz)
    dtstart, start, end = _check_dtstart(dtstart_local), as_utc(after), as_utc(until)
    if parsed.until_utc is not None:
        end = min(end, parsed.until_utc)
    if limit < 0:
        raise ValueError("limit must not be negative")
    if limit == 0 or start >= end:
        return []
    first_naive = _naive_shift(start.astimezone(zone), -_MARGIN)
    dtstart = _fast_forward(dtstart, parsed.period, first_naive)
    return _collect(_expansion(parsed.local_text, dtstart), zone, start, end, limit)


def _fast_forward(dtstart: datetime, period: timedelta | None, first_naive: datetime) -> datetime:
    """DTSTART moved by whole periods to just before ``first_naive``, when the rule allows it.

    Expanding from years-old DTSTARTs would otherwise walk every past occurrence on each call.
    """
    if period is None or first_naive <= dtstart:
        return dtstart
    return dtstart + period * ((first_naive - dtstart) // period)


def _collect(
    expansion: rrule, zone: tzinfo, start: datetime, end: datetime, limit: int
) -> list[datetime]:
    """Occurrences in (start, end], stopping once later ones can no longer be among the first."""
    found: set[datetime] = set()
    first_naive = _naive_shift(start.astimezone(zone), -_MARGIN)
    last_naive = _naive_shift(end.astimezone(zone), _MARGIN)
    horizon: datetime | None = None
    for wall in expansion.xafter(first_naive, inc=True):
        if wall > last_naive or (horizon is not None and wall > horizon):
            break
        instant = local_to_utc(wall, zone)
        if start < instant <= end:
            found.add(instant)
        if horizon is None and len(found) >= limit:
            # Past this wall time, instants are later than all found (offsets move < _MARGIN).
            horizon = _naive_shift(wall, _MARGIN)
    return sorted(found)[:limit]


def _naive_shift(moment: datetime, delta: timedelta) -> datetime:
    """The naive wall time of ``moment`` moved by ``delta``, clamped to the datetime range."""
    wall = moment.replace(tzinfo=None)
    try:
        return wall + delta
    except OverflowError:
        return datetime.max if delta > timedelta(0) else datetime.min


def _check_dtstart(dtstart_local: datetime) -> datetime:
    """``dtstart_local`` if it is a naive wall time on a whole minute; ValueError otherwise."""
    if dtstart_local.tzinfo is not None:
        raise ValueError("dtstart_local must be a naive local wall time")
    if dtstart_local.second or dtstart_local.microsecond:
        raise ValueError("dtstart_local must be on a whole minute")
    return dtstart_local


@lru_cache(maxsize=4096)
def _expansion(local_text: str, dtstart_local: datetime) -> rrule:
    """The dateutil rule for a validated text (cached: parsing is the costly part)."""
    parsed = rrulestr(local_text, dtstart=dtstart_local)
    if not isinstance(parsed, rrule):  # pragma: no cover - a single RRULE is never a set
        raise ValueError("expected a single RRULE")
    return parsed


@lru_cache(maxsize=1024)
def _parse_rule(rule: str) -> _Rule:
    """Validate ``rule`` part by part, then check that dateutil agrees and that it ever fires."""
    text = rule.strip().upper().removeprefix("RRULE:")
    parts = _split_parts(text, rule)
    freq = parts.pop("FREQ", None)
    if freq is None:
        raise ValueError(f"rule {rule!r} has no FREQ")
    if freq in _TOO_FINE:
        raise ValueError(f"FREQ={freq} is too frequent for a prompt: use DAILY or coarser")
    if freq not in _FREQS:
        raise ValueError(f"unknown FREQ={freq}; expected one of {', '.join(_FREQS)}")
    if "COUNT" in parts and "UNTIL" in parts:
        raise ValueError("COUNT and UNTIL cannot both be given (RFC 5545)")
    for name, value in parts.items():
        _check_part(name, value)
    canonical = ";".join([f"FREQ={freq}", *(f"{k}={v}" for k, v in parts.items())])
    local_text, until_utc = _localize_until(canonical, parts.get("UNTIL"))
    _check_fires(freq, parts)
    return _Rule(canonical, local_text, until_utc, _period(freq, parts))


def _period(freq: str, parts: dict[str, str]) -> timedelta | None:
    """The fixed period of a DAILY or WEEKLY rule, if shifting DTSTART by it changes nothing.

    Not with COUNT (counted from DTSTART) nor BYSETPOS (a partial first week would shift the
    positions); months and years have no fixed length.
    """
    if "COUNT" in parts or "BYSETPOS" in parts or freq not in ("DAILY", "WEEKLY"):
        return None
    days = int(parts.get("INTERVAL", "1")) * (7 if freq == "WEEKLY" else 1)
    return timedelta(days=days)


def _split_parts(text: str, rule: str) -> dict[str, str]:
    """``NAME=VALUE`` parts of a rule in order; ValueError for garbage or a repeated name."""
    parts: dict[str, str] = {}
    for chunk in text.split(";"):
        name, sep, value = (piece.strip() for piece in chunk.partition("="))
        if not sep or not name or not value:
            raise ValueError(f"rule {rule!r}: {chunk!r} is not NAME=VALUE")
        if name in parts:
            raise ValueError(f"rule {rule!r}: {name} is given twice")
        parts[name] = value
    return parts


def _check_part(name: str, value: str) -> None:
    """ValueError unless ``value`` is valid for the RFC 5545 rule part ``name``."""
    if name in _INT_PARTS:
        lowest, highest, signed = _INT_PARTS[name]
        items = value.split(",")
        if name in _SINGLE and len(items) > 1:
            raise ValueError(f"{name} takes one value, got {value}")
        for item in items:
            number = int(item) if re.fullmatch(r"[+-]?\d{1,7}", item) else None
            if number is None or (number < 0 and not signed):
                raise ValueError(f"{name}={item} is not a valid number here")
            if not lowest <= abs(number) <= highest:
                raise ValueError(f"{name}={item} is out of range {lowest}..{highest}")
    elif name == "BYDAY":
        if not all(_BYDAY.fullmatch(day) for day in value.split(",")):
            raise ValueError(f"BYDAY={value} is not a list of days like SU or -1FR")
    elif name == "WKST":
        if not re.fullmatch(_DAY, value):
            raise ValueError(f"WKST={value} is not a day like MO")
    elif name != "UNTIL":
        raise ValueError(f"unknown rule part {name}")


def _localize_until(canonical: str, until: str | None) -> tuple[str, datetime | None]:
    """The text to expand locally and the UTC end: a UTC UNTIL is applied after conversion."""
    if until is None:
        return canonical, None
    match = _UNTIL.fullmatch(until)
    if match is None:
        raise ValueError(f"UNTIL={until} is not a date (YYYYMMDD) or date-time (YYYYMMDDTHHMMSS)")
    day, clock, utc = match.groups()
    try:
        end = datetime.strptime(day + (clock or "235959"), "%Y%m%d%H%M%S")
    except ValueError as exc:
        raise ValueError(f"UNTIL={until} is not a valid date") from exc
    others = canonical.replace(f";UNTIL={until}", "")
    if utc:
        return others, end.replace(tzinfo=UTC)
    return f"{others};UNTIL={end:%Y%m%dT%H%M%S}", None


def _check_fires(freq: str, parts: dict[str, str]) -> None:
    """ValueError for a rule that never fires (e.g. February 30th), which dateutil would loop on."""
    body = ";".join(f"{k}={v}" for k, v in parts.items() if k not in ("COUNT", "UNTIL"))
    text = f"FREQ={freq}" + (f";{body}" if body else "")
    try:
        probe = _expansion(text, _CHECK_FROM)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"invalid rule: {exc}") from exc
    if next(iter(probe), None) is None:
        raise ValueError("rule never fires (checked over 20 years)")


def local_date(instant: datetime, zone: tzinfo) -> date:
    """The local calendar date of an aware instant in ``zone``."""
    return as_utc(instant).astimezone(zone).date()
