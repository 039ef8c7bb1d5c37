"""Fake Telegram Bot API and Twilio REST API served on loopback for the real client libraries."""

from __future__ import annotations

from tests.fakes.limits import ManualClock
from tests.fakes.server import JsonPoster, LoopbackServer, Poster, guard_loopback
from tests.fakes.telegram import TEST_BOT_TOKEN, FakeTelegramApi
from tests.fakes.twilio import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, FakeTwilioApi

__all__ = [
    "TEST_ACCOUNT_SID",
    "TEST_AUTH_TOKEN",
    "TEST_BOT_TOKEN",
    "FakeTelegramApi",
    "FakeTwilioApi",
    "JsonPoster",
    "LoopbackServer",
    "ManualClock",
    "Poster",
    "guard_loopback",
]
