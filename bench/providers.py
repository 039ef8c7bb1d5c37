"""The fake providers of a topology run: Telegram, Twilio and a FHIR sink, with storms.

The fakes (tests/fakes) speak the real wire protocols on loopback and enforce the real
limits (Telegram 30 messages a second and 1 a second per chat, Twilio the sender's MPS),
counting every 429 our pacing caused as a violation. Here they also tell a listener about
each message they accept, and can be made to fail on purpose: a storm answers a share of
sends with a 5xx and, in bursts, every send with a 429 (those are never violations).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from c3n_bot.store.base import Channel
from tests.fakes import FakeFhirServer, FakeTelegramApi, FakeTwilioApi, twilio_wire
from tests.fakes import telegram_wire as tg_wire
from tests.fakes.server import Response

TELEGRAM_GLOBAL, TELEGRAM_PER_CHAT = 30, 1  # what Telegram allows (and rate_limits says)
FHIR_TOKEN = "bench-fhir-token"

# (channel, address, text): called under the fake's lock, so it must only hand over.
OnSent = Callable[[Channel, str, str], None]


@dataclass
class Storm:
    """Failure injection for `lasts` seconds from `begin`: `error_share` of sends get a 5xx,
    and every `burst_every` seconds all sends get a 429 (Retry-After 1) for `burst_seconds`.
    Storm() injects nothing."""

    error_share: float = 0.0
    burst_every: float = 0.0
    burst_seconds: float = 1.0
    lasts: float = math.inf
    seed: int = 9

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        self.injected: Counter[int] = Counter()
        self.begin()

    def begin(self) -> None:
        """The storm starts now."""
        self._started = time.monotonic()

    def failure(self) -> int | None:
        """The status to answer this send with, or None to let it through."""
        with self._lock:
            age = time.monotonic() - self._started
            if age > self.lasts:
                return None
            if self.burst_every > 0 and age % self.burst_every < self.burst_seconds:
                self.injected[429] += 1
                return 429
            if self.error_share > 0 and self._random.random() < self.error_share:
                status = self._random.choice((500, 502, 503))
                self.injected[status] += 1
                return status
        return None


class _Recorded(list[dict[str, Any]]):
    """A fake's `sent` log that tells the listener about each accepted message."""

    def __init__(self, tell: Callable[[dict[str, Any]], None]) -> None:
        super().__init__()
        self._tell = tell

    def append(self, item: dict[str, Any], /) -> None:
        super().append(item)
        self._tell(item)


class StormyTelegram(FakeTelegramApi):
    """The fake Bot API, whose sendMessage may fail as the storm says."""

    storm = Storm()

    def call(self, method: str, params: dict[str, Any]) -> Response:
        """Answer as Telegram, unless the storm fails this sendMessage."""
        if method.lower() == "sendmessage" and (status := self.storm.failure()):
            with self._changed:
                self.calls.append((method, params))
            if status == 429:
                return tg_wire.too_many_requests(1).response()
            return tg_wire.error(status, tg_wire.DEFAULT_DESCRIPTIONS.get(status, "Error"))
        return super().call(method, params)


class StormyTwilio(FakeTwilioApi):
    """The fake Twilio API, whose message creates may fail as the storm says."""

    storm = Storm()

    def _create(self, params: dict[str, Any]) -> Response:
        status = self.storm.failure()
        if status == 429:
            return twilio_wire.error(20429)
        if status is not None:
            return twilio_wire.error(20500 if status == 500 else 20503, status=status)
        return super()._create(params)


class Providers:
    """Telegram, Twilio and one FHIR sink on loopback; `on_sent` hears every accepted message."""

    def __init__(self, *, mps: int, on_sent: OnSent | None = None) -> None:
        self.telegram = StormyTelegram()
        self.twilio = StormyTwilio()
        self.fhir = FakeFhirServer(token=FHIR_TOKEN)
        self.mps = mps
        self.on_sent = on_sent  # may be set after the start
        self.tap: OnSent | None = None  # a drill's trigger, told first
        self.telegram.sent = _Recorded(self._telegram_sent)
        self.twilio.sent = _Recorded(self._sms_sent)
        self.set_storm(Storm())

    def set_storm(self, storm: Storm) -> None:
        """Fail sends from now on as `storm` says (Storm() for none)."""
        storm.begin()
        self.telegram.storm = storm
        self.twilio.storm = storm

    @property
    def violations(self) -> int:
        """429s our pacing caused, both providers."""
        return self.telegram.violations + self.twilio.violations

    def sent(self) -> list[tuple[Channel, str, str]]:
        """Every accepted message as (channel, address, text), Telegram first."""
        telegram = [
            (Channel.TELEGRAM, str(m["chat_id"]), str(m["text"])) for m in list(self.telegram.sent)
        ]
        sms = [(Channel.SMS, str(m["To"]), str(m["Body"])) for m in list(self.twilio.sent)]
        return telegram + sms

    def start(self) -> Self:
        """Start the three servers with the providers' limits enforced."""
        self.telegram.start()
        self.twilio.start()
        self.fhir.start()
        self.telegram.enforce_limits(TELEGRAM_GLOBAL, TELEGRAM_PER_CHAT)
        self.twilio.enforce_rate(self.mps)
        return self

    def stop(self) -> None:
        """Stop the three servers."""
        for server in (self.fhir, self.twilio, self.telegram):
            server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _telegram_sent(self, message: dict[str, Any]) -> None:
        self._tell(Channel.TELEGRAM, str(message["chat_id"]), str(message["text"]))

    def _sms_sent(self, message: dict[str, Any]) -> None:
        self._tell(Channel.SMS, str(message["To"]), str(message["Body"]))

    def _tell(self, channel: Channel, address: str, text: str) -> None:
        for listener in (self.tap, self.on_sent):
            if listener is not None:
                listener(channel, address, text)

    def accepted(self) -> int:
        """Messages both providers accepted so far."""
        return len(self.telegram.sent) + len(self.twilio.sent)
