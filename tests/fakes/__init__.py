"""Fake Telegram Bot API, Twilio REST API and FHIR server on loopback, for the real clients."""

from __future__ import annotations

from tests.fakes.fhir import FakeFhirServer
from tests.fakes.limits import ManualClock, MovableClock
from tests.fakes.server import JsonPoster, LoopbackServer, Poster, guard_loopback
from tests.fakes.telegram import TEST_BOT_TOKEN, FakeTelegramApi
from tests.fakes.twilio import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, FakeTwilioApi

__all__ = [
    "TEST_ACCOUNT_SID",
    "TEST_AUTH_TOKEN",
    "TEST_BOT_TOKEN",
    "FakeFhirServer",
    "FakeTelegramApi",
    "FakeTwilioApi",
    "JsonPoster",
    "LoopbackServer",
    "ManualClock",
    "MovableClock",
    "Poster",
    "guard_loopback",
]
