"""The pacer on a simulated clock: provider limits overall and per recipient, and pauses."""

from __future__ import annotations

import pytest

from c3n_bot.service.delivery import RateLimit
from c3n_bot.service.pacing import Pacer
from c3n_bot.store.base import Channel

TELEGRAM = RateLimit(per_second=30.0, per_recipient_per_second=1.0)


class ManualMonotonic:
    """A monotonic clock that moves only when a sleep or the test moves it."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.value = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.value

    def sleep(self, seconds: float) -> None:
        """What the pacer calls instead of time.sleep: recorded, and time moves on."""
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.value += seconds

    def advance(self, seconds: float) -> None:
        self.value += seconds


def _send(pacer: Pacer, clock: ManualMonotonic, channel: Channel, key: str | None) -> float:
    """What the dispatcher does: wait for the recipient, take a slot; the send's time."""
    wait = pacer.recipient_wait(channel, key)
    if wait > 0:
        clock.sleep(wait)
    pacer.take(channel, key, sleep=clock.sleep)
    return clock()


def _max_in_any_window(times: list[float], window: float = 1.0) -> int:
    """The most sends that fall in any half-open window [t, t + window)."""
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= window - 1e-9:
            start += 1
        most = max(most, end - start + 1)
    return most


@pytest.mark.parametrize("per_second", [1.0, 3.0, 30.0, 80.0])
def test_never_more_than_the_limit_in_any_second(per_second: float) -> None:
    clock = ManualMonotonic()
    pacer = Pacer({Channel.SMS: RateLimit(per_second=per_second)}, monotonic=clock)

    times = [_send(pacer, clock, Channel.SMS, f"+1617555{n:04d}") for n in range(200)]

    assert times == sorted(times)
    assert _max_in_any_window(times) <= per_second
    # Evenly spaced, never a burst: every gap is one slot.
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 1 / per_second


def test_a_burst_after_idle_time_is_still_spaced() -> None:
    clock = ManualMonotonic()
    pacer = Pacer({Channel.TELEGRAM: TELEGRAM}, monotonic=clock)
    first = [_send(pacer, clock, Channel.TELEGRAM, f"chat-{n}") for n in range(30)]
    clock.advance(60.0)  # a quiet minute: no credit is saved up for a burst

    second = [_send(pacer, clock, Channel.TELEGRAM, f"other-{n}") for n in range(60)]

    assert _max_in_any_window(first + second) <= 30
    assert second[0] == pytest.approx(first[-1] + 60.0, abs=0.1)


def test_per_recipient_spacing_is_at_least_one_over_the_limit() -> None:
    clock = ManualMonotonic()
    pacer = Pacer({Channel.TELEGRAM: TELEGRAM}, monotonic=clock)
    sent: dict[str, list[float]] = {"a": [], "b": [], "c": []}

    for n in range(60):
        key = "abc"[n % 3] if n % 4 else "a"  # chat "a" gets more than its share
        sent[key].append(_send(pacer, clock, Channel.TELEGRAM, key))

    for times in sent.values():
        gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
        assert gaps and min(gaps) >= 1.0
    everything = sorted(t for times in sent.values() for t in times)
    assert _max_in_any_window(everything) <= 30


def test_recipient_wait_is_zero_for_a_new_chat_and_for_unkeyed_messages() -> None:
    clock = ManualMonotonic()
    pacer = Pacer({Channel.TELEGRAM: TELEGRAM}, monotonic=clock)
    pacer.take(Channel.TELEGRAM, "a", sleep=clock.sleep)

    assert pacer.recipient_wait(Channel.TELEGRAM, "a") >= 1.0
    assert pacer.recipient_wait(Channel.TELEGRAM, "b") == 0.0
    assert pacer.recipient_wait(Channel.TELEGRAM, None) == 0.0
    clock.advance(1.5)
    assert pacer.recipient_wait(Channel.TELEGRAM, "a") == 0.0


def test_a_recipients_spacing_counts_from_when_the_provider_answered() -> None:
    # The first send of a process connects first: it reaches the provider half a second
    # after its slot. The chat's next message must still arrive a second after it did.
    clock = ManualMonotonic()
    pacer = Pacer({Channel.TELEGRAM: TELEGRAM}, monotonic=clock)
    booked = _send(pacer, clock, Channel.TELEGRAM, "a")
    clock.advance(0.5)  # connecting, then the request itself
    pacer.answered(Channel.TELEGRAM, "a")
    arrived = clock()

    assert arrived - booked == pytest.approx(0.5)
    assert _send(pacer, clock, Channel.TELEGRAM, "a") >= arrived + 1.0
    assert pacer.recipient_wait(Channel.TELEGRAM, "b") == 0.0


def test_pause_holds_a_recipient_back_and_not_the_others() -> None:
    clock = ManualMonotonic()
    pacer = Pacer({Channel.TELEGRAM: TELEGRAM}, monotonic=clock)

    pacer.pause(Channel.TELEGRAM, "a", 12.0)

    assert pacer.recipient_wait(Channel.TELEGRAM, "a") == pytest.approx(12.0)
    assert pacer.recipient_wait(Channel.TELEGRAM, "b") == 0.0
    assert _send(pacer, clock, Channel.TELEGRAM, "b") == pytest.approx(1_000.0)
    assert _send(pacer, clock, Channel.TELEGRAM, "a") >= 1_012.0
    # A shorter pause never shortens a longer hold.
    pacer.pause(Channel.TELEGRAM, "a", 30.0)
    pacer.pause(Channel.TELEGRAM, "a", 1.0)
    assert pacer.recipient_wait(Channel.TELEGRAM, "a") == pytest.approx(30.0)


def test_pause_without_a_recipient_holds_the_whole_channel() -> None:
    clock = ManualMonotonic()
    pacer = Pacer(
        {Channel.SMS: RateLimit(per_second=10.0), Channel.TELEGRAM: TELEGRAM}, monotonic=clock
    )

    pacer.pause(Channel.SMS, None, 5.0)
    telegram_at = _send(pacer, clock, Channel.TELEGRAM, "chat")
    sms_at = _send(pacer, clock, Channel.SMS, None)

    assert telegram_at == pytest.approx(1_000.0)  # other channels are not held
    assert sms_at == pytest.approx(1_005.0)
    assert clock.sleeps == [pytest.approx(5.0)]


def test_a_channel_without_a_limit_never_waits() -> None:
    clock = ManualMonotonic()
    pacer = Pacer({}, monotonic=clock)

    for _ in range(1_000):
        pacer.take(Channel.WEB, "x", sleep=clock.sleep)

    assert clock.sleeps == []
    assert pacer.recipient_wait(Channel.WEB, "x") == 0.0


@pytest.mark.parametrize(
    "limit",
    [TELEGRAM, RateLimit(per_second=1.0), RateLimit(per_second=10.0), RateLimit(per_second=100.0)],
    ids=["telegram-30", "twilio-1", "twilio-10", "twilio-100"],
)
def test_achieved_rate_is_95_to_100_percent_of_the_limit(limit: RateLimit) -> None:
    clock = ManualMonotonic()
    pacer = Pacer({Channel.SMS: limit}, monotonic=clock)

    times = [_send(pacer, clock, Channel.SMS, f"chat-{n}") for n in range(300)]

    achieved = (len(times) - 1) / (times[-1] - times[0])
    assert 0.95 * limit.per_second <= achieved <= limit.per_second
    assert _max_in_any_window(times) <= limit.per_second
