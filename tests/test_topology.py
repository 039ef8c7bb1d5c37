"""The Procfile topology as real processes on the test PostgreSQL: conversations complete
once across them, and a worker killed mid-send loses nothing (bench/drills.py, small).

One `c3n-bot web`, two `c3n-bot worker` and one `c3n-bot clock` run against the fake
Telegram, Twilio and FHIR servers; families answer every question as it reaches a fake.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.cluster import Cluster, Shape
from bench.drills import worker_kill
from bench.providers import Providers
from bench.scenario import converse, seed_batch
from c3n_bot.store.base import Channel
from c3n_bot.store.models.conversations import SessionStatus
from tests.conftest import PostgresDatabases

FAMILIES = 10  # half on Telegram (1 message a second per chat), half on SMS
TIMEOUT = 90.0  # a Telegram conversation needs 12 s at least


@pytest.fixture(scope="module")
def cluster(
    postgres_databases: PostgresDatabases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """The processes, up for the module's tests (logs in the test's temporary folder)."""
    workdir: Path = tmp_path_factory.mktemp("topology")
    database_url = postgres_databases.create("topology")
    with (
        Providers(mps=50) as providers,
        Cluster(
            workdir, providers, Shape(webs=1, workers=2, clocks=1), database_url=database_url
        ) as running,
    ):
        yield running


async def test_conversations_complete_once_across_the_processes(cluster: Cluster) -> None:
    batch = seed_batch(cluster, count=FAMILIES, first=0)

    outcome = await converse(cluster, batch, timeout=TIMEOUT)

    assert outcome.failures() == []
    assert outcome.ledger.sessions[SessionStatus.COMPLETED] == FAMILIES
    assert outcome.ledger.lease_resends == 0
    assert cluster.providers.violations == 0


async def test_a_worker_killed_mid_send_loses_nothing_and_resends_only_its_message(
    cluster: Cluster,
) -> None:
    batch = seed_batch(cluster, count=FAMILIES, first=FAMILIES)

    outcome = await converse(cluster, batch, timeout=TIMEOUT, fault=worker_kill(FAMILIES))

    assert outcome.failures() == []  # nothing lost, no duplicate outside the lease window
    # The killed worker ran one dispatcher per provider channel, each sending one message at a
    # time (its other claimed rows had not left): at most one resend per channel.
    resent: Counter[Channel] = Counter()
    for (channel, address, _), times in outcome.ledger.resent.items():
        if (channel, address) in outcome.ledger.lease:
            resent[channel] += times
    assert all(times <= 1 for times in resent.values()), resent
    assert any("killed mid-send" in note for note in outcome.record.notes)
    assert any("recovered by a lease takeover" in note for note in outcome.record.notes)
    assert cluster.providers.violations == 0
