"""The pure time logic of schedules: DST, quiet hours, the daily cap, catch-up, visits, ages.

No database and no clock: every instant is written out, and the expected UTC instants are
computed by hand (EST is UTC-5 and EDT UTC-4, so 18:00 EST = 23:00Z and 18:00 EDT = 22:00Z).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import example, given, settings
from hypothesis import strategies as st

from c3n_bot.service.timing import (
    QuietHours,
    age_on,
    catch_up,
    defer_for_cap,
    defer_for_quiet_hours,
    due_by_age,
    next_slots,
    pre_visit_time,
    reminder_times,
    slot_key,
    validate_rule,
    wall_status,
)

NY = "America/New_York"
SUNDAY_1800 = "FREQ=WEEKLY;BYDAY=SU;BYHOUR=18;BYMINUTE=0"
NIGHT = QuietHours(time(21, 0), time(8, 0))
QUIET_REASON = "quiet hours 21:00-08:00 (America/New_York)"
CAP_REASON = "daily cap of 3 prompts reached"


def z(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A UTC instant."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def z26(stamp: str) -> datetime:
    """A UTC instant in 2026 from ``"MM-DDTHH"``."""
    return datetime.fromisoformat(f"2026-{stamp}:00+00:00")


def local(
    tz: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """A local wall time (first occurrence if repeated), as a UTC instant."""
    wall = datetime(year, month, day, hour, minute, second, tzinfo=ZoneInfo(tz))
    return wall.astimezone(UTC)


def slots(rule: str, tz: str, start: datetime, after: datetime, until: datetime) -> list[datetime]:
    """All slots of ``rule`` in (after, until]."""
    return next_slots(rule, tz, start, after, until, limit=1000)


# --- Weekly prompts across DST --------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "first_sunday", "expected"),
    [
        (NY, "03-01", ["03-01T23", "03-08T22", "03-15T22"]),
        (NY, "10-25", ["10-25T22", "11-01T23", "11-08T23"]),
        ("America/Los_Angeles", "03-01", ["03-02T02", "03-09T01", "03-16T01"]),
        ("America/Los_Angeles", "10-25", ["10-26T01", "11-02T02", "11-09T02"]),
        ("Europe/Madrid", "03-22", ["03-22T17", "03-29T16", "04-05T16"]),
        ("Europe/Madrid", "10-18", ["10-18T16", "10-25T17", "11-01T17"]),
        ("Australia/Sydney", "03-29", ["03-29T07", "04-05T08", "04-12T08"]),
        ("Australia/Sydney", "09-27", ["09-27T08", "10-04T07", "10-11T07"]),
    ],
)
def test_weekly_sunday_1800_stays_at_1800_local_across_dst(
    tz: str, first_sunday: str, expected: list[str]
) -> None:
    start = datetime.fromisoformat(f"2026-{first_sunday}T18:00")
    after = start.replace(tzinfo=UTC) - timedelta(days=1)
    found = next_slots(SUNDAY_1800, tz, start, after, after + timedelta(days=60), 3)
    assert found == [z26(stamp) for stamp in expected]
    assert all(slot.astimezone(ZoneInfo(tz)).time() == time(18, 0) for slot in found)


def test_weekly_sunday_1800_over_all_of_2026_in_new_york() -> None:
    found = slots(SUNDAY_1800, NY, datetime(2026, 1, 4, 18), z(2026, 1, 1), z(2027, 1, 1))
    assert len(found) == 52
    edt = {slot for slot in found if z(2026, 3, 8, 7) < slot < z(2026, 11, 1, 6)}
    assert all(slot.hour == 22 for slot in edt)
    assert all(slot.hour == 23 for slot in set(found) - edt)


# --- Nonexistent and ambiguous wall times ---------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "day", "wall", "expected", "reads"),
    [
        # Spring forward: 02:30 does not exist and is shifted by the gap, once.
        (NY, date(2026, 3, 8), time(2, 30), z(2026, 3, 8, 7, 30), time(3, 30)),
        ("America/Los_Angeles", date(2026, 3, 8), time(2, 30), z(2026, 3, 8, 10, 30), time(3, 30)),
        ("Europe/Madrid", date(2026, 3, 29), time(2, 30), z(2026, 3, 29, 1, 30), time(3, 30)),
        ("Australia/Sydney", date(2026, 10, 4), time(2, 30), z(2026, 10, 3, 16, 30), time(3, 30)),
        ("Australia/Lord_Howe", date(2026, 10, 4), time(2, 15), z26("10-03T15:45"), time(2, 45)),
        # Fall back: the repeated wall time fires once, at its first occurrence.
        (NY, date(2026, 11, 1), time(1, 30), z(2026, 11, 1, 5, 30), time(1, 30)),
        ("America/Los_Angeles", date(2026, 11, 1), time(1, 30), z(2026, 11, 1, 8, 30), time(1, 30)),
        ("Europe/Madrid", date(2026, 10, 25), time(2, 30), z(2026, 10, 25, 0, 30), time(2, 30)),
        ("Australia/Sydney", date(2026, 4, 5), time(2, 30), z(2026, 4, 4, 15, 30), time(2, 30)),
        # The same 02:30 rule on the fall-back day is an ordinary time.
        (NY, date(2026, 11, 1), time(2, 30), z(2026, 11, 1, 7, 30), time(2, 30)),
    ],
)  # fmt: skip
def test_daily_rule_at_a_transition_fires_exactly_once(
    tz: str, day: date, wall: time, expected: datetime, reads: time
) -> None:
    rule = f"FREQ=DAILY;BYHOUR={wall.hour};BYMINUTE={wall.minute}"
    start = datetime.combine(day - timedelta(days=5), wall)
    midnight = local(tz, day.year, day.month, day.day)
    around = slots(rule, tz, start, midnight - timedelta(hours=1), midnight + timedelta(hours=25))
    on_day = [slot for slot in around if slot.astimezone(ZoneInfo(tz)).date() == day]
    assert on_day == [expected]
    assert expected.astimezone(ZoneInfo(tz)).time() == reads
    assert expected.astimezone(ZoneInfo(tz)).fold == 0


def test_daily_0230_in_new_york_around_spring_forward() -> None:
    found = slots("FREQ=DAILY", NY, datetime(2026, 3, 6, 2, 30), z(2026, 3, 6), z(2026, 3, 10))
    assert found == [z(2026, 3, 6, 7, 30), z(2026, 3, 7, 7, 30), z(2026, 3, 8, 7, 30),
                     z(2026, 3, 9, 6, 30)]  # fmt: skip


def test_every_quarter_hour_fires_once_a_day_through_both_transitions() -> None:
    zone = ZoneInfo(NY)
    for minutes in range(0, 24 * 60, 15):
        wall = time(minutes // 60, minutes % 60)
        for first in (date(2026, 3, 6), date(2026, 10, 30)):
            start = datetime.combine(first, wall)
            found = slots("FREQ=DAILY", NY, start, local(NY, 2026, 1, 1), local(NY, 2027, 1, 1))
            days = [slot.astimezone(zone).date() for slot in found[:5]]
            assert days == [first + timedelta(days=k) for k in range(5)], wall


def test_a_shifted_time_that_meets_an_existing_one_fires_once() -> None:
    rule = "FREQ=DAILY;BYHOUR=2,3;BYMINUTE=30"
    found = slots(rule, NY, datetime(2026, 3, 7, 2, 30), z(2026, 3, 7), z(2026, 3, 10))
    assert found == [z(2026, 3, 7, 7, 30), z(2026, 3, 7, 8, 30), z(2026, 3, 8, 7, 30),
                     z(2026, 3, 9, 6, 30), z(2026, 3, 9, 7, 30)]  # fmt: skip


def test_wall_status_names_gaps_and_repeats() -> None:
    zone = ZoneInfo(NY)
    assert wall_status(datetime(2026, 3, 8, 2, 30), zone) == "gap"
    assert wall_status(datetime(2026, 11, 1, 1, 30), zone) == "ambiguous"
    assert wall_status(datetime(2026, 11, 1, 2, 30), zone) == "ok"


# --- Other rules, bounds and keys -----------------------------------------------------------


def test_every_six_months_keeps_local_time() -> None:
    found = slots("FREQ=MONTHLY;INTERVAL=6", NY, datetime(2026, 1, 15, 18), z(2026, 1, 1),
                  z(2027, 12, 31))  # fmt: skip
    assert found == [z(2026, 1, 15, 23), z(2026, 7, 15, 22), z(2027, 1, 15, 23),
                     z(2027, 7, 15, 22)]  # fmt: skip


def test_after_is_exclusive_until_inclusive_and_limit_takes_the_first() -> None:
    start = datetime(2026, 3, 1, 18)
    assert slots(SUNDAY_1800, NY, start, z(2026, 3, 1, 23), z(2026, 3, 8, 22)) == [
        z(2026, 3, 8, 22)
    ]
    assert next_slots(SUNDAY_1800, NY, start, z(2026, 1, 1), z(2027, 1, 1), 2) == [
        z(2026, 3, 1, 23),
        z(2026, 3, 8, 22),
    ]
    assert next_slots(SUNDAY_1800, NY, start, z(2026, 1, 1), z(2027, 1, 1), 0) == []
    assert slots(SUNDAY_1800, NY, start, z(2026, 5, 1), z(2026, 4, 1)) == []


def test_slots_never_precede_dtstart() -> None:
    found = slots(SUNDAY_1800, NY, datetime(2026, 3, 8, 18), z(2026, 1, 1), z(2026, 3, 9))
    assert found == [z(2026, 3, 8, 22)]


@pytest.mark.parametrize(
    ("until_part", "last"),
    [
        ("UNTIL=20260308T220000Z", z(2026, 3, 8, 22)),  # a UTC end, inclusive
        ("UNTIL=20260308", z(2026, 3, 8, 22)),  # a local date, the whole day
        ("UNTIL=20260308T180000", z(2026, 3, 8, 22)),  # a local wall time, inclusive
        ("COUNT=2", z(2026, 3, 8, 22)),
    ],
)
def test_rule_end(until_part: str, last: datetime) -> None:
    rule = f"{SUNDAY_1800};{until_part}"
    found = slots(rule, NY, datetime(2026, 3, 1, 18), z(2026, 1, 1), z(2027, 1, 1))
    assert found == [z(2026, 3, 1, 23), last]


def test_slot_key_is_the_utc_minute() -> None:
    slot = local(NY, 2026, 3, 8, 18, 0, 42)
    assert slot_key("42", slot) == "schedule:42:2026-03-08T22:00Z"
    assert slot_key("42", slot.astimezone(ZoneInfo(NY))) == "schedule:42:2026-03-08T22:00Z"


def test_inputs_must_say_their_timezone() -> None:
    start = datetime(2026, 3, 1, 18)
    with pytest.raises(ValueError, match="aware"):
        next_slots(SUNDAY_1800, NY, start, datetime(2026, 1, 1), z(2026, 2, 1), 1)
    with pytest.raises(ValueError, match="naive local wall time"):
        next_slots(SUNDAY_1800, NY, start.replace(tzinfo=UTC), z(2026, 1, 1), z(2026, 2, 1), 1)
    with pytest.raises(ValueError, match="unknown timezone"):
        next_slots(SUNDAY_1800, "Mars/Olympus", start, z(2026, 1, 1), z(2026, 2, 1), 1)
    with pytest.raises(ValueError, match="aware"):
        slot_key("1", datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("rule", "canonical"),
    [
        (SUNDAY_1800, SUNDAY_1800),
        ("rrule:byday=su;freq=weekly", "FREQ=WEEKLY;BYDAY=SU"),
        ("FREQ=MONTHLY; INTERVAL=6", "FREQ=MONTHLY;INTERVAL=6"),
        ("FREQ=MONTHLY;BYDAY=-1FR;WKST=MO", "FREQ=MONTHLY;BYDAY=-1FR;WKST=MO"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29"),
    ],
)
def test_validate_rule_returns_the_canonical_form(rule: str, canonical: str) -> None:
    assert validate_rule(rule) == canonical


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("", "not NAME=VALUE"),
        ("garbage", "not NAME=VALUE"),
        ("FREQ=DAILY;;", "not NAME=VALUE"),
        ("BYDAY=SU;BYHOUR=18", "no FREQ"),
        ("FREQ=HOURLY", "too frequent"),
        ("FREQ=MINUTELY;INTERVAL=30", "too frequent"),
        ("FREQ=SECONDLY", "too frequent"),
        ("FREQ=FORTNIGHTLY", "unknown FREQ"),
        ("FREQ=DAILY;FREQ=WEEKLY", "given twice"),
        ("FREQ=DAILY;FOO=1", "unknown rule part FOO"),
        ("FREQ=DAILY;BYEASTER=0", "unknown rule part BYEASTER"),
        ("FREQ=DAILY;INTERVAL=0", "out of range"),
        ("FREQ=DAILY;INTERVAL=-1", "not a valid number"),
        ("FREQ=DAILY;INTERVAL=1,2", "takes one value"),
        ("FREQ=DAILY;BYHOUR=24", "out of range"),
        ("FREQ=DAILY;BYHOUR=x", "not a valid number"),
        ("FREQ=DAILY;BYSECOND=30", "out of range"),
        ("FREQ=MONTHLY;BYMONTHDAY=0", "out of range"),
        ("FREQ=WEEKLY;BYDAY=XX", "BYDAY=XX"),
        ("FREQ=WEEKLY;WKST=XX", "WKST=XX"),
        ("FREQ=DAILY;COUNT=3;UNTIL=20270101", "COUNT and UNTIL"),
        ("FREQ=DAILY;UNTIL=2027", "not a date"),
        ("FREQ=DAILY;UNTIL=20270230", "not a valid date"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "never fires"),
        ("FREQ=DAILY;BYMONTH=4;BYMONTHDAY=31", "never fires"),
        ("FREQ=WEEKLY;DTSTART=20260101T000000", "unknown rule part DTSTART"),
    ],
)
def test_validate_rule_refuses_garbage_clearly(rule: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_rule(rule)


# --- Property: wall times hold in any timezone, for any daily or weekly rule ----------------

ZONES = [
    NY, "America/Los_Angeles", "America/St_Johns", "America/Sao_Paulo", "Europe/Madrid",
    "Europe/London", "Australia/Sydney", "Australia/Lord_Howe", "Pacific/Auckland",
    "Asia/Kolkata", "UTC",
]  # fmt: skip
DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


def expected_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """Brute force, independent of fold: the first instant reading ``wall``, else the gap shift."""
    offsets = {zone.utcoffset(wall + timedelta(hours=12 * k)) for k in range(-2, 3)}
    known = [offset for offset in offsets if offset is not None]
    readings = sorted(
        (wall - offset).replace(tzinfo=UTC)
        for offset in known
        if ((wall - offset).replace(tzinfo=UTC)).astimezone(zone).replace(tzinfo=None) == wall
    )
    if readings:
        return readings[0]
    return (wall - min(known)).replace(tzinfo=UTC)  # in a gap: read with the offset before it


@st.composite
def schedules(draw: st.DrawFn) -> tuple[str, str, datetime, list[int]]:
    """(rule, timezone, dtstart, weekdays it fires on) for a random daily or weekly rule."""
    tz = draw(st.sampled_from(ZONES))
    first = date(2025, 1, 1) + timedelta(days=draw(st.integers(0, 3 * 365)))
    wall = time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 15, 30, 45, 59])))
    weekdays = draw(st.one_of(st.none(), st.sets(st.integers(0, 6), min_size=1)))
    if weekdays is None:
        rule, fires_on = "FREQ=DAILY", list(range(7))
    else:
        fires_on = sorted(weekdays)
        rule = "FREQ=WEEKLY;BYDAY=" + ",".join(DAYS[day] for day in fires_on)
    rule += f";BYHOUR={wall.hour};BYMINUTE={wall.minute}"
    return rule, tz, datetime.combine(first, wall), fires_on


@settings(max_examples=150, deadline=None)
@given(schedules())
@example(("FREQ=DAILY;BYHOUR=2;BYMINUTE=30", NY, datetime(2026, 1, 1, 2, 30), list(range(7))))
@example(("FREQ=DAILY;BYHOUR=2;BYMINUTE=15", "Australia/Lord_Howe", datetime(2026, 1, 1, 2, 15),
          list(range(7))))  # fmt: skip
@example(("FREQ=WEEKLY;BYDAY=SU;BYHOUR=1;BYMINUTE=30", NY, datetime(2026, 1, 4, 1, 30), [6]))
def test_expanded_slots_keep_the_wall_time_or_the_documented_shift(
    schedule: tuple[str, str, datetime, list[int]],
) -> None:
    rule, tz, start, fires_on = schedule
    zone = ZoneInfo(tz)
    after = datetime.combine(start.date() - timedelta(days=2), time(12)).replace(tzinfo=UTC)
    until = after + timedelta(days=365)
    found = slots(rule, tz, start, after, until)
    assert all(earlier < later for earlier, later in zip(found, found[1:], strict=False))
    days = (start.date() + timedelta(days=k) for k in range(368))
    walls = [datetime.combine(day, start.time()) for day in days if day.weekday() in fires_on]
    expected = {expected_instant(wall, zone) for wall in walls}
    assert found == sorted(instant for instant in expected if after < instant <= until)
    for slot in found:
        reads = slot.astimezone(zone)
        wall = datetime.combine(reads.date(), start.time())
        if reads.time() == start.time():
            assert reads.fold == 0
            assert wall_status(wall, zone) != "gap"
        else:
            assert wall_status(wall, zone) == "gap"
            assert reads.replace(tzinfo=None) == wall + gap_length(wall, zone)


def gap_length(wall: datetime, zone: ZoneInfo) -> timedelta:
    """How far the clocks jump at the gap around ``wall`` (a day either side is past it)."""
    before = zone.utcoffset(wall - timedelta(days=1))
    after = zone.utcoffset(wall + timedelta(days=1))
    assert before is not None and after is not None
    return after - before


@st.composite
def old_schedules(draw: st.DrawFn) -> tuple[str, datetime]:
    """A daily or weekly rule with an interval and filters, started years ago."""
    freq = draw(st.sampled_from(["DAILY", "WEEKLY"]))
    parts = [f"FREQ={freq}", f"INTERVAL={draw(st.integers(1, 4))}"]
    if freq == "WEEKLY" and draw(st.booleans()):
        days = draw(st.sets(st.sampled_from(DAYS), min_size=1))
        parts += [f"BYDAY={','.join(sorted(days))}", f"WKST={draw(st.sampled_from(DAYS))}"]
    if draw(st.booleans()):
        parts.append(f"BYMONTH={','.join(map(str, draw(st.sets(st.integers(1, 12), min_size=1))))}")
    hours = draw(st.sets(st.integers(0, 23), min_size=1, max_size=3))
    parts.append(f"BYHOUR={','.join(map(str, sorted(hours)))};BYMINUTE=30")
    first = datetime(2015, 1, 1, 9) + timedelta(days=draw(st.integers(0, 10 * 365)))
    return ";".join(parts), first


@settings(max_examples=100, deadline=None)
@given(old_schedules(), st.integers(0, 365), st.sampled_from(ZONES))
def test_old_schedules_expand_as_from_their_first_day(
    schedule: tuple[str, datetime], offset: int, tz: str
) -> None:
    rule, start = schedule
    zone = ZoneInfo(tz)
    after = z(2026, 1, 1) + timedelta(days=offset)
    until = after + timedelta(days=60)
    walls = rrulestr(rule, dtstart=start).between(
        (after - timedelta(days=2)).replace(tzinfo=None),
        (until + timedelta(days=2)).replace(tzinfo=None),
    )
    expected = {expected_instant(wall, zone) for wall in walls}
    assert slots(rule, tz, start, after, until) == sorted(t for t in expected if after < t <= until)
    first_five = next_slots(rule, tz, start, after, until, 5)
    assert first_five == sorted(t for t in expected if after < t <= until)[:5]


# --- Quiet hours ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wall", "quiet"),
    [
        (time(21, 0), True),  # the start is quiet
        (time(20, 59, 59), False),
        (time(23, 59), True),
        (time(0, 0), True),
        (time(7, 59, 59), True),
        (time(8, 0), False),  # the end is not
        (time(12, 0), False),
    ],
)
def test_quiet_hours_wrap_midnight(wall: time, quiet: bool) -> None:
    assert NIGHT.contains(wall) is quiet
    assert NIGHT.wraps


def test_quiet_hours_within_a_day_and_none() -> None:
    lunch = QuietHours.parse("13:00", "15:00")
    assert not lunch.wraps
    assert [lunch.contains(time(h)) for h in (12, 13, 14, 15)] == [False, True, True, False]
    never = QuietHours(time(9, 0), time(9, 0))
    assert not any(never.contains(time(h)) for h in range(24))
    with pytest.raises(ValueError, match="naive"):
        QuietHours(time(21, tzinfo=UTC), time(8))


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (local(NY, 2026, 6, 10, 21, 0), local(NY, 2026, 6, 11, 8, 0)),  # exactly the start
        (local(NY, 2026, 6, 10, 23, 30), local(NY, 2026, 6, 11, 8, 0)),  # evening: next morning
        (local(NY, 2026, 6, 11, 0, 0), local(NY, 2026, 6, 11, 8, 0)),
        (local(NY, 2026, 6, 11, 7, 59), local(NY, 2026, 6, 11, 8, 0)),  # early: same morning
        (z(2026, 3, 8, 4), z(2026, 3, 8, 12)),  # 23:00 EST before spring forward -> 08:00 EDT
        (z(2026, 11, 1, 3), z(2026, 11, 1, 13)),  # 23:00 EDT before fall back -> 08:00 EST
    ],
)
def test_quiet_hours_defer_to_their_end(when: datetime, expected: datetime) -> None:
    assert defer_for_quiet_hours(when, NY, NIGHT) == (expected, QUIET_REASON)


@pytest.mark.parametrize(
    "when", [local(NY, 2026, 6, 11, 8, 0), local(NY, 2026, 6, 10, 20, 59), z(2026, 3, 8, 12)]
)
def test_outside_quiet_hours_nothing_moves(when: datetime) -> None:
    assert defer_for_quiet_hours(when, NY, NIGHT) == (when, None)
    assert defer_for_quiet_hours(when, NY, None) == (when, None)


def test_quiet_hours_ending_in_a_gap_or_a_repeat() -> None:
    # Ending at 02:30 on the spring-forward night: shifted to 03:30 EDT, like a schedule.
    late = QuietHours(time(22, 0), time(2, 30))
    assert defer_for_quiet_hours(z(2026, 3, 8, 6), NY, late)[0] == z(2026, 3, 8, 7, 30)
    # Ending at 01:30 on the fall-back night: the first 01:30, or the second one if the
    # first has already passed (01:10 EST, the second pass, is still quiet until 01:30 EST).
    early = QuietHours(time(22, 0), time(1, 30))
    assert defer_for_quiet_hours(z(2026, 11, 1, 5, 10), NY, early)[0] == z(2026, 11, 1, 5, 30)
    assert defer_for_quiet_hours(z(2026, 11, 1, 6, 10), NY, early)[0] == z(2026, 11, 1, 6, 30)


def test_quiet_hours_use_the_family_timezone() -> None:
    when = z(2026, 6, 10, 20)  # 22:00 in Madrid, 16:00 in New York
    madrid = defer_for_quiet_hours(when, "Europe/Madrid", NIGHT)
    assert madrid == (z(2026, 6, 11, 6), "quiet hours 21:00-08:00 (Europe/Madrid)")
    assert defer_for_quiet_hours(when, NY, NIGHT) == (when, None)


# --- Daily cap ------------------------------------------------------------------------------

SENT_JUNE_10 = [local(NY, 2026, 6, 10, h) for h in (9, 12, 15)]


def test_cap_reached_defers_to_the_next_morning() -> None:
    at = defer_for_cap(local(NY, 2026, 6, 10, 17), NY, SENT_JUNE_10, 3, NIGHT)
    assert at == (local(NY, 2026, 6, 11, 8), CAP_REASON)


def test_under_the_cap_nothing_moves() -> None:
    when = local(NY, 2026, 6, 10, 17)
    assert defer_for_cap(when, NY, SENT_JUNE_10[:2], 3, NIGHT) == (when, None)
    assert defer_for_cap(when, NY, SENT_JUNE_10, 4, NIGHT) == (when, None)


def test_cap_counts_the_local_day_not_the_utc_day() -> None:
    # 23:30 EDT on June 9 is June 10 in UTC, but not in New York.
    sent = [local(NY, 2026, 6, 9, 23, 30), *SENT_JUNE_10[:2]]
    when = local(NY, 2026, 6, 10, 17)
    assert defer_for_cap(when, NY, sent, 3, NIGHT) == (when, None)


def test_cap_and_quiet_hours_combine() -> None:
    sent_june_11 = [local(NY, 2026, 6, 11, h) for h in (8, 9, 10)]
    at = defer_for_cap(local(NY, 2026, 6, 10, 22), NY, sent_june_11, 3, NIGHT)
    assert at == (local(NY, 2026, 6, 12, 8), f"{QUIET_REASON}; {CAP_REASON}")


def test_cap_without_quiet_hours_moves_to_local_midnight() -> None:
    at = defer_for_cap(local(NY, 2026, 6, 10, 17), NY, SENT_JUNE_10, 3, None)
    assert at == (local(NY, 2026, 6, 11, 0), CAP_REASON)


def test_cap_across_spring_forward() -> None:
    sent = [local(NY, 2026, 3, 7, h) for h in (9, 12, 15)]
    at = defer_for_cap(local(NY, 2026, 3, 7, 19), NY, sent, 3, NIGHT)
    assert at == (z(2026, 3, 8, 12), CAP_REASON)  # 08:00 EDT


def test_cap_must_allow_a_prompt() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        defer_for_cap(z(2026, 6, 10, 12), NY, [], 0, NIGHT)


# --- Catch-up after downtime ----------------------------------------------------------------

NOW = z(2026, 3, 8, 12)
GRACE = timedelta(hours=6)


@pytest.mark.parametrize(
    ("slot", "expected"),
    [
        (NOW + timedelta(microseconds=1), "future"),
        (NOW, "due"),
        (NOW - timedelta(hours=2), "due"),  # a 2-hour downtime: sent late
        (NOW - GRACE + timedelta(microseconds=1), "due"),
        (NOW - GRACE, "missed"),
        (NOW - timedelta(days=2), "missed"),  # a 2-day downtime: recorded, never a burst
    ],
)
def test_catch_up_grace_boundaries(slot: datetime, expected: str) -> None:
    assert catch_up(slot, NOW, GRACE) == expected


def test_catch_up_defaults_to_six_hours_and_refuses_negative_grace() -> None:
    assert catch_up(NOW - timedelta(hours=5, minutes=59), NOW) == "due"
    assert catch_up(NOW - timedelta(hours=6), NOW) == "missed"
    with pytest.raises(ValueError, match="negative"):
        catch_up(NOW, NOW, -GRACE)


# --- Visit reminders ------------------------------------------------------------------------


def test_visit_reminders_across_spring_forward() -> None:
    visit = local(NY, 2026, 3, 10, 10)  # 14:00Z
    assert reminder_times(visit, NY) == [(7, z(2026, 3, 3, 23)), (1, z(2026, 3, 9, 22))]


def test_visit_reminders_across_fall_back() -> None:
    visit = local(NY, 2026, 11, 3, 9)
    assert reminder_times(visit, NY, (1, 7)) == [(7, z(2026, 10, 27, 22)), (1, z(2026, 11, 2, 23))]


def test_visit_reminders_use_the_local_visit_date() -> None:
    visit = local(NY, 2026, 6, 10, 21)  # June 11 in UTC
    assert reminder_times(visit, NY, (1,)) == [(1, local(NY, 2026, 6, 9, 18))]


def test_reminders_at_or_after_the_visit_are_skipped() -> None:
    morning = local(NY, 2026, 6, 10, 10)
    assert reminder_times(morning, NY, (0, 1)) == [(1, local(NY, 2026, 6, 9, 18))]
    evening = local(NY, 2026, 6, 10, 19)
    assert reminder_times(evening, NY, (0,)) == [(0, local(NY, 2026, 6, 10, 18))]
    assert reminder_times(local(NY, 2026, 6, 10, 18), NY, (0,)) == []
    with pytest.raises(ValueError, match="days before"):
        reminder_times(morning, NY, (-1,))


def test_pre_visit_prompt_three_days_before_at_1800() -> None:
    assert pre_visit_time(local(NY, 2026, 3, 10, 10), NY) == z(2026, 3, 7, 23)  # 18:00 EST
    assert pre_visit_time(local(NY, 2026, 3, 10, 10), NY, 1, time(9)) == z(2026, 3, 9, 13)
    assert pre_visit_time(local(NY, 2026, 3, 10, 10), NY, 0) is None


# --- Age rules ------------------------------------------------------------------------------


def test_age_turns_on_the_birthday() -> None:
    born = date(2014, 5, 20)
    assert age_on(born, date(2026, 5, 19)) == 11
    assert age_on(born, date(2026, 5, 20)) == 12
    assert not due_by_age(born, date(2026, 5, 19), 12)
    assert due_by_age(born, date(2026, 5, 20), 12)
    assert age_on(born, born) == 0


def test_born_on_february_29() -> None:
    leapling = date(2012, 2, 29)
    assert age_on(leapling, date(2024, 2, 28)) == 11
    assert age_on(leapling, date(2024, 2, 29)) == 12
    assert age_on(leapling, date(2025, 2, 28)) == 12  # common year: a year older on 1 March
    assert age_on(leapling, date(2025, 3, 1)) == 13
    assert not due_by_age(date(2016, 2, 29), date(2028, 2, 28), 12)
    assert due_by_age(date(2016, 2, 29), date(2028, 2, 29), 12)
    assert not due_by_age(date(2015, 2, 28), date(2027, 2, 27), 12)
    assert due_by_age(date(2015, 2, 28), date(2027, 2, 28), 12)


def test_no_age_before_birth() -> None:
    assert not due_by_age(date(2020, 1, 1), date(2019, 12, 31), 0)
    with pytest.raises(ValueError, match="before the birth date"):
        age_on(date(2020, 1, 1), date(2019, 12, 31))
