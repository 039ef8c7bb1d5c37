"""Every test of the fakes runs with connections beyond loopback refused."""

from __future__ import annotations

import pytest

from tests.fakes.limits import ManualClock
from tests.fakes.server import guard_loopback


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    guard_loopback(monkeypatch)
    # PTB 22 warns (an error here) whenever RetryAfter is built unless this opt-in is set.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
def clock() -> ManualClock:
    """A clock for the rate-limit windows."""
    return ManualClock()
