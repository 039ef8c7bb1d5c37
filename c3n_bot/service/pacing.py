"""Pacing outbound messages under a provider's limits: overall and per recipient."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

from c3n_bot.service.delivery import RateLimit
from c3n_bot.store.base import Channel

# Spacing a little wider than 1/rate keeps us under a provider's sliding window despite
# clock jitter, while the achieved rate stays within a few percent of the limit.
MARGIN = 1.02
WINDOW_SLACK = 0.005


class Pacer:
    """Evenly spaced sends: never more than the limit in any second, never a burst."""

    def __init__(
        self,
        limits: Mapping[Channel, RateLimit],
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = dict(limits)
        self._now = monotonic
        self._lock = threading.Lock()
        self._next_send: dict[Channel, float] = {}
        self._next_recipient: dict[tuple[Channel, str], float] = {}
        # When the provider answered the last `per_second` sends: a provider counts arrivals
        # in a sliding second, so send k waits until 1 s after send k - limit was answered.
        self._answered: dict[Channel, deque[float]] = {}

    def recipient_wait(self, channel: Channel, key: str | None) -> float:
        """Seconds until this recipient may get another message (0 when it may now)."""
        if key is None:
            return 0.0
        with self._lock:
            ready = self._next_recipient.get((channel, key), 0.0)
        return max(0.0, ready - self._now())

    def take(self, channel: Channel, key: str | None, *, sleep: Callable[[float], object]) -> None:
        """Wait for the channel's next send slot, then book it (and the recipient's)."""
        limit = self._limits.get(channel)
        if limit is None:
            return
        with self._lock:
            now = self._now()
            slot = max(now, self._next_send.get(channel, 0.0), self._window_open(channel, limit))
            self._next_send[channel] = slot + MARGIN / limit.per_second
            if key is not None and limit.per_recipient_per_second:
                spacing = MARGIN / limit.per_recipient_per_second
                self._next_recipient[(channel, key)] = max(slot, now) + spacing
                self._forget_old(now)
        if slot > now:
            sleep(slot - now)

    def answered(self, channel: Channel, key: str | None = None) -> None:
        """Record that the provider answered a send to `key`: the sliding window's clock, and
        the recipient's next slot counted from here, since a send may leave well after its
        slot was booked (a first send connects first) and the provider counts arrivals."""
        limit = self._limits.get(channel)
        if limit is None:
            return
        size = max(1, int(limit.per_second))
        with self._lock:
            now = self._now()
            window = self._answered.setdefault(channel, deque(maxlen=size))
            window.append(now)
            if key is not None and limit.per_recipient_per_second:
                ready = now + MARGIN / limit.per_recipient_per_second
                current = self._next_recipient.get((channel, key), 0.0)
                self._next_recipient[(channel, key)] = max(current, ready)

    def _window_open(self, channel: Channel, limit: RateLimit) -> float:
        window = self._answered.get(channel)
        if not window or len(window) < max(1, int(limit.per_second)):
            return 0.0
        return window[0] + 1.0 + WINDOW_SLACK

    def pause(self, channel: Channel, key: str | None, seconds: float) -> None:
        """The provider asked us to slow down: hold the recipient (or the channel) back."""
        with self._lock:
            until = self._now() + seconds
            if key is not None:
                current = self._next_recipient.get((channel, key), 0.0)
                self._next_recipient[(channel, key)] = max(current, until)
            else:
                self._next_send[channel] = max(self._next_send.get(channel, 0.0), until)

    def _forget_old(self, now: float) -> None:
        if len(self._next_recipient) > 10_000:
            self._next_recipient = {k: v for k, v in self._next_recipient.items() if v > now}
