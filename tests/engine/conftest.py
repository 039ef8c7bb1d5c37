"""Engine test switches: ``--update-golden`` (or ``C3N_UPDATE_GOLDEN=1``) rewrites transcripts.

pytest reads ``pytest_addoption`` only from conftests it loads at start-up, so the option
works when this folder is named on the command line (``pytest tests/engine
--update-golden``); from the repository root use the environment variable instead
(``C3N_UPDATE_GOLDEN=1 pytest``).
"""

from __future__ import annotations

import os

import pytest

UPDATE_ENV = "C3N_UPDATE_GOLDEN"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add --update-golden."""
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help=f"rewrite tests/transcripts/*.txt instead of comparing (or {UPDATE_ENV}=1)",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    """Whether golden files are to be rewritten rather than compared."""
    option = bool(request.config.getoption("update_golden", default=False))
    return option or os.environ.get(UPDATE_ENV, "").strip() not in ("", "0")
