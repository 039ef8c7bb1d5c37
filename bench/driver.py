"""The families and the providers' webhook side: every question a fake delivers is answered.

The fakes tell `Families.heard` about each message they accept (from their own threads);
a question ("(3 of 10) ...") is answered once per family and question, by a webhook that
the `Gateway` posts to the web processes in turn, as a load balancer in front of them
would. Like the providers, the gateway sends a webhook again, to the next web process, until
it is answered 200: after a refused connection (a dead process), a 5xx (a 503 while the
database is down) or no answer in time.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections import Counter
from dataclasses import dataclass, field

from bench.common import LOOPBACK, Family, LoadClient, RawClient, Seeded
from bench.webhooks import Webhook, WebhookFactory
from c3n_bot.store.base import Channel

QUESTION = re.compile(r"\((\d+) of (\d+)\)")
FIRST_RETRY_SECONDS = 0.1
MAX_RETRY_SECONDS = 2.0
# Update ids and MessageSids, unique for the whole run: a provider never reuses one, and
# the app stores each (channel, id) once, ignoring any later message carrying it.
_SERIALS = itertools.count(1)


def next_serial() -> int:
    """A new update id or MessageSid number."""
    return next(_SERIALS)


def answer_for(question: int) -> str:
    """Several days for the first question, not at all for the rest (no crisis alert)."""
    return "1" if question == 1 else "0"


@dataclass
class GatewayStats:
    """What the webhooks met on their way."""

    delivered: int = 0  # requests answered 2xx (each copy counts)
    answers: Counter[int] = field(default_factory=Counter)  # every answer, 0 = none
    latencies: list[float] = field(default_factory=list)  # first try -> 200, seconds
    gave_up: int = 0


class Gateway:
    """Posts webhooks to the web processes round robin, again until one answers 200."""

    def __init__(self, ports: list[int], *, give_up_after: float = 300.0) -> None:
        # A short timeout: a killed process never answers, and the retry goes elsewhere.
        self._clients: list[LoadClient] = [
            RawClient(LOOPBACK, port, max_connections=64, timeout=10.0) for port in ports
        ]
        self._turn = itertools.count()
        self._give_up_after = give_up_after
        self.in_flight: Counter[int] = Counter()  # requests out, by web process (0, 1...)
        self.stats = GatewayStats()

    async def deliver(self, webhook: Webhook) -> bool:
        """Send until answered 2xx (True), or give up after `give_up_after` seconds or a 4xx."""
        started = time.monotonic()
        pause = FIRST_RETRY_SECONDS
        while True:
            index = next(self._turn) % len(self._clients)
            self.in_flight[index] += 1
            try:
                status = await self._clients[index].request(
                    "POST", webhook.path, body=webhook.body, headers=webhook.headers
                )
            finally:
                self.in_flight[index] -= 1
            self.stats.answers[status] += 1
            if 200 <= status < 300:
                self.stats.delivered += 1
                self.stats.latencies.append(time.monotonic() - started)
                return True
            if time.monotonic() - started > self._give_up_after or 400 <= status < 500:
                self.stats.gave_up += 1
                return False
            await asyncio.sleep(pause)
            pause = min(MAX_RETRY_SECONDS, pause * 2)

    async def aclose(self) -> None:
        """Close every connection."""
        for client in self._clients:
            await client.aclose()


class Families:
    """The seeded families: they answer each question once, by webhook through the gateway."""

    def __init__(self, gateway: Gateway, webhooks: WebhookFactory, *, copies: int = 1) -> None:
        self.gateway = gateway
        self._webhooks = webhooks
        self._by_address: dict[tuple[Channel, str], Family] = {}
        self._answered: set[tuple[Channel, str, int]] = set()
        self._tasks: set[asyncio.Task[bool]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.copies = copies  # every webhook delivered this many times (dedupe drill)
        self.heard_counts: Counter[str] = Counter()  # question, repeat, other, stranger

    def add(self, seeded: Seeded) -> None:
        """These families answer from now on."""
        for family in seeded.families:
            self._by_address[(family.channel, family.address)] = family

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop that sends the answers."""
        self._loop = loop

    def heard(self, channel: Channel, address: str, text: str) -> None:
        """A fake accepted a message (called on its thread): answer it from the loop."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._answer, channel, address, text)

    @property
    def in_flight(self) -> int:
        """Webhooks still being delivered."""
        return len(self._tasks)

    def _answer(self, channel: Channel, address: str, text: str) -> None:
        question = QUESTION.search(text)
        family = self._by_address.get((channel, address))
        if family is None:
            self.heard_counts["stranger"] += 1
            return
        if question is None:
            self.heard_counts["other"] += 1
            return
        number = int(question.group(1))
        if (channel, address, number) in self._answered:
            self.heard_counts["repeat"] += 1  # the same question again: a resend
            return
        self.heard_counts["question"] += 1
        self._answered.add((channel, address, number))
        webhook = self._webhook(family, answer_for(number))
        for _ in range(self.copies):
            task = asyncio.ensure_future(self.gateway.deliver(webhook))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _webhook(self, family: Family, text: str) -> Webhook:
        serial = next_serial()
        if family.channel == Channel.TELEGRAM:
            return self._webhooks.telegram_text(int(family.address), text, update_id=serial)
        return self._webhooks.sms(family.address, text, serial=serial)
