"""A sliding one-second window, the rate limit both fake APIs enforce, and clocks for tests."""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime, timedelta


class SlidingWindow:
    """At most `limit` events within any `span` seconds; the caller holds any lock."""

    def __init__(self, limit: int, span: float = 1.0) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.span = span
        self._times: deque[float] = deque()

    def wait(self, now: float) -> float:
        """Seconds until one more event fits (0 when it fits now)."""
        while self._times and now - self._times[0] >= self.span:
            self._times.popleft()
        if len(self._times) < self.limit:
            return 0.0
        return self.span - (now - self._times[0])

    def record(self, now: float) -> None:
        """Count an accepted event."""
        self._times.append(now)


def retry_after_seconds(wait: float) -> int:
    """The whole seconds a provider tells the client to wait (never 0)."""
    return max(1, math.ceil(wait))


class ManualClock:
    """A monotonic clock that moves only when the test says so (pass it as ``clock=``)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class MovableClock:
    """Aware wall time for the app and its workers; only the test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move on by a timedelta's keywords (seconds=..., minutes=...)."""
        self.now += timedelta(**delta)
