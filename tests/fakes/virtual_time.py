"""Virtual time for rate-limit runs: the app's clock, the pacer's and the fakes' in one.

Time moves only when the code under test sleeps on it (the dispatcher's pacer) or the test
moves it, so thousands of sends at the real provider limits (30 a second) take the CPU time
they cost and no wall time waiting; the fakes judge every send in the same virtual seconds.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any


class VirtualTime:
    """Aware wall time (call it), a monotonic reading, and a sleep that moves both."""

    def __init__(self, start: datetime) -> None:
        self._start = start
        self._lock = threading.Lock()
        self.elapsed = 0.0
        self.sleeps = 0

    def __call__(self) -> datetime:
        return self._start + timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        """Seconds since an arbitrary origin, as time.monotonic."""
        return 1000.0 + self.elapsed

    def sleep(self, seconds: float) -> None:
        """Move on by `seconds` (never back)."""
        with self._lock:
            self.elapsed += max(0.0, seconds)
            self.sleeps += 1

    def advance_to(self, when: datetime) -> None:
        """Move on to the wall time `when`."""
        self.sleep((when - self()).total_seconds())


class StampedLog(list[dict[str, Any]]):
    """A fake's `sent` log that also keeps the virtual time each entry was accepted."""

    def __init__(self, time: VirtualTime) -> None:
        super().__init__()
        self._time = time
        self.times: list[float] = []

    def append(self, item: dict[str, Any], /) -> None:
        # Called under the fake's lock, right after it accepted the message.
        self.times.append(self._time.monotonic())
        super().append(item)
