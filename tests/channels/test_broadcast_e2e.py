"""A broadcast to 10,000 families through the fake providers, at the real limits.

The clock task writes the broadcast into the outbox; the real Dispatcher sends it through the
real TelegramSender (python-telegram-bot) and TwilioSender (twilio Client) to the fakes, which
refuse more than 30 messages a second (1 per chat) and C3N_TWILIO_MPS a second. Time is
virtual (tests/fakes/virtual_time.py): the pacer sleeps on it and the fakes judge each send by
it, so the run costs its CPU time, not the hours 10,000 messages take at those rates.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from c3n_bot.channels.telegram import TelegramSender
from c3n_bot.channels.twilio_sms import TwilioSender
from c3n_bot.config import Settings
from c3n_bot.service import broadcasts, community, community_results
from c3n_bot.service.audit import Actor
from c3n_bot.service.broadcasts import BroadcastIn
from c3n_bot.service.dispatcher import Dispatcher
from c3n_bot.service.workers import build_services, rate_limits
from c3n_bot.store.base import Channel
from c3n_bot.store.db import make_engine, make_session_factory
from c3n_bot.store.models import Broadcast
from c3n_bot.store.models.community import RecipientOutcome
from tests.community_seed import QUIET_ZONE, Seeded, seed_contacts, seed_organisers
from tests.fakes import FakeTelegramApi, FakeTwilioApi
from tests.fakes.twilio import SERVICE_NUMBER
from tests.fakes.virtual_time import StampedLog, VirtualTime

FAMILIES = 10_000
MPS = 10
TEMPLATE = "Hi {{ first_name }}: the {{ program }} spring newsletter is out."


@dataclasses.dataclass
class Providers:
    """The fakes, their logs in virtual time, and settings pointing at them."""

    telegram: FakeTelegramApi
    twilio: FakeTwilioApi
    telegram_log: StampedLog
    twilio_log: StampedLog
    settings: Settings
    time: VirtualTime


@pytest.fixture
def providers(settings: Settings, now: datetime) -> Iterator[Providers]:
    time = VirtualTime(now)
    with (
        FakeTelegramApi(clock=time.monotonic) as telegram,
        FakeTwilioApi(clock=time.monotonic) as twilio,
    ):
        telegram.enforce_limits(30, 1)
        twilio.enforce_rate(MPS)
        telegram_log, twilio_log = StampedLog(time), StampedLog(time)
        telegram.sent, twilio.sent = telegram_log, twilio_log
        configured = settings.model_copy(
            update={
                "telegram_token": SecretStr(telegram.token),
                "telegram_api_url": telegram.url,
                "twilio_account_sid": twilio.account_sid,
                "twilio_auth_token": SecretStr(twilio.auth_token),
                "twilio_from": SERVICE_NUMBER,
                "twilio_api_url": twilio.url,
                "twilio_mps": MPS,
            }
        )
        yield Providers(telegram, twilio, telegram_log, twilio_log, configured, time)


def _drain(dispatcher: Dispatcher) -> None:
    while dispatcher.drain_once():
        pass


def _send_broadcast(
    sessions: sessionmaker[Session], providers: Providers, now: datetime
) -> list[Seeded]:
    services = dataclasses.replace(
        build_services(providers.settings), channels=frozenset({Channel.TELEGRAM, Channel.SMS})
    )
    with sessions.begin() as db:
        org = seed_organisers(db, now)
        seeded = seed_contacts(db, center_id=org.center_id, count=FAMILIES, now=now)
        data = BroadcastIn(name="Newsletter", templates={"en": TEMPLATE})
        broadcast = broadcasts.create_broadcast(
            db, data=data, allowed={org.center_id}, actor=Actor("staff", None),
            user_id=org.organiser_id, now=now,
        )  # fmt: skip
        broadcasts.schedule(
            db, broadcast_id=broadcast.id, at=now, allowed={org.center_id},
            actor=Actor("staff", None), now=now,
        )  # fmt: skip
    with sessions.begin() as db:
        assert community.tick(db, now, services) == FAMILIES
    return seeded


@pytest.mark.slow
def test_a_broadcast_to_10000_families_reaches_exactly_those_it_may(
    providers: Providers, now: datetime
) -> None:
    engine = make_engine(providers.settings.sqlalchemy_url)
    sessions = make_session_factory(engine)
    seeded = _send_broadcast(sessions, providers, now)
    time = providers.time
    dispatcher = Dispatcher(
        sessions,
        {
            Channel.TELEGRAM: TelegramSender(providers.settings),
            Channel.SMS: TwilioSender(providers.settings),
        },
        time,
        limits=rate_limits(providers.settings),
        batch=500,
        monotonic=time.monotonic,
        sleep=time.sleep,
    )
    try:
        _drain(dispatcher)
        first_pass = len(providers.telegram_log) + len(providers.twilio_log)
        time.advance_to(now.replace(hour=23))  # 08:00 in Tokyo: their quiet hours are over
        _drain(dispatcher)
    finally:
        dispatcher.close()

    expected = Counter(s.expected(quiet=s.timezone == QUIET_ZONE) for s in seeded)
    with sessions() as db:
        broadcast = db.scalars(select(Broadcast)).one()
        results = community_results.broadcast_results(db, [broadcast])
    engine.dispose()
    assert results.outcomes == {o.value: expected[o] for o in RecipientOutcome}
    reached = expected[RecipientOutcome.QUEUED] + expected[RecipientOutcome.DEFERRED]
    assert first_pass == expected[RecipientOutcome.QUEUED]
    assert results.delivery == {"waiting": 0, "sent": reached, "delivered": 0, "failed": 0,
                                "cancelled": 0}  # fmt: skip

    # Exactly the included families, once each: no stopped, non-consenting or unreachable one.
    included = [s for s in seeded if s.expected(quiet=False) == RecipientOutcome.QUEUED]
    chats = [str(m["chat_id"]) for m in providers.telegram_log]
    numbers = [str(m["To"]) for m in providers.twilio_log]
    assert sorted(chats) == sorted(
        str(s.address) for s in included if s.channel == Channel.TELEGRAM
    )
    assert sorted(numbers) == sorted(str(s.address) for s in included if s.channel == Channel.SMS)
    assert len(set(chats)) == len(chats) and len(set(numbers)) == len(numbers)

    # The providers' limits held at every moment (they count each 429 we caused).
    assert providers.telegram.violations == 0 and providers.twilio.violations == 0
    assert _peak_per_second(providers.telegram_log.times) <= 30
    assert _peak_per_second(providers.twilio_log.times) <= MPS


def _peak_per_second(times: list[float]) -> int:
    """The most sends within any one-second window (sliding, as the providers count)."""
    peak, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        peak = max(peak, end - start + 1)
    return peak


def test_virtual_time_moves_only_when_slept_on(now: datetime) -> None:
    time = VirtualTime(now)
    before = time.monotonic()
    time.sleep(1.5)
    time.advance_to(now + timedelta(hours=1))
    assert time() == now + timedelta(hours=1) and time.monotonic() - before == 3600.0
