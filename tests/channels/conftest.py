"""Channel tests reach nothing beyond loopback, where the fake provider APIs are served."""

from __future__ import annotations

import pytest

from tests.fakes.server import guard_loopback


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    guard_loopback(monkeypatch)
