"""The sink pusher: claims due registry deliveries of one sink and POSTs each as a Bundle.

At-least-once on our side, exactly-once on the server's: a claimed row is leased (its
`next_attempt_at` moved LEASE ahead) and committed before the POST, and its result is
committed after. A process that dies in between leaves the row to be pushed again when the
lease runs out; every entry of the Bundle is a conditional create (`ifNoneExist`), so the
server creates nothing twice.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from c3n_bot.config import FhirSink
from c3n_bot.registry.fhir_bundle import transaction_bundle
from c3n_bot.registry.fhir_push import PushResult, local_outcome, new_client, push
from c3n_bot.registry.submission_record import SubmissionRecord, load_records
from c3n_bot.service.dispatcher import backoff_seconds
from c3n_bot.service.drain_loop import DrainLoop
from c3n_bot.service.flows import FlowCatalog
from c3n_bot.service.registry_queue import wake_on_commit
from c3n_bot.service.workers import Runtime
from c3n_bot.store.models import RegistryDelivery
from c3n_bot.store.models.registry import DeliveryStatus

log = logging.getLogger(__name__)

# Longer than any push can take (the client times out after 30 s).
LEASE = timedelta(minutes=5)


class SinkPusher(DrainLoop):
    """Pushes the pending deliveries of one sink, with backoff; a Worker (start/stop)."""

    event = "sink_pusher"

    def __init__(
        self,
        sessions: sessionmaker[Session],
        flows: FlowCatalog,
        sink: FhirSink,
        clock: Callable[[], datetime],
        *,
        client: httpx.Client | None = None,
        jitter: Callable[[], float] = random.random,
        batch: int = 20,
        idle_wait: float = 2.0,
    ) -> None:
        super().__init__(idle_wait=idle_wait)
        self.sink = sink
        self._sessions = sessions
        self._flows = flows
        self._clock = clock
        self._client = client or new_client()
        self._jitter = jitter
        self._batch = batch

    def close(self) -> None:
        """Release the HTTP connections."""
        self._client.close()

    def log_extra(self) -> dict[str, Any]:
        """The sink's name."""
        return {"sink": self.sink.name}

    def drain_once(self) -> int:
        """Claim one batch of due rows and push each; returns how many were claimed."""
        claimed = self._claim()
        if not claimed:
            return 0
        with self._sessions() as db:
            records = {r.id: r for r in load_records(db, claimed.values())}
        for delivery_id, submission_id in claimed.items():
            if self._stopping.is_set():
                self._finish(delivery_id, None)
                continue
            self._finish(delivery_id, self._push(records[submission_id]))
        return len(claimed)

    def _claim(self) -> dict[int, uuid.UUID]:
        now = self._clock()
        with self._sessions.begin() as db:
            rows = db.execute(
                select(RegistryDelivery.id, RegistryDelivery.submission_id)
                .where(
                    RegistryDelivery.sink == self.sink.name,
                    RegistryDelivery.status == DeliveryStatus.PENDING,
                    RegistryDelivery.next_attempt_at <= now,
                )
                .order_by(RegistryDelivery.next_attempt_at, RegistryDelivery.id)
                .limit(self._batch)
                .with_for_update(skip_locked=True)
            ).all()
            claimed = {row.id: row.submission_id for row in rows}
            if claimed:
                db.execute(
                    update(RegistryDelivery)
                    .where(RegistryDelivery.id.in_(list(claimed)))
                    .values(next_attempt_at=now + LEASE)
                )
        return claimed

    def _push(self, record: SubmissionRecord) -> PushResult:
        if not self._flows.has(record.flow_id):
            outcome = local_outcome("not-found", f"flow {record.flow_id!r} is not deployed")
            return PushResult("failed", operation_outcome=outcome)
        bundle = transaction_bundle(record, self._flows.get(record.flow_id))
        return push(self._client, self.sink, bundle)

    def _finish(self, delivery_id: int, result: PushResult | None) -> None:
        """Apply a push result to the row; None gives an unpushed row back, due now."""
        now = self._clock()
        with self._sessions.begin() as db:
            row = db.get(RegistryDelivery, delivery_id)
            if row is None:
                return
            if result is None:
                row.next_attempt_at = now
                return
            record_result(row, result, now=now, jitter=self._jitter())
        log.info(
            "registry.push",
            extra={
                "delivery_id": delivery_id,
                "sink": self.sink.name,
                "outcome": result.outcome,
                "status_code": result.status_code,
            },
        )


def record_result(
    row: RegistryDelivery, result: PushResult, *, now: datetime, jitter: float = 0.5
) -> None:
    """Delivered, or due again after Retry-After or a backoff, or failed with the outcome."""
    row.attempts += 1
    row.last_status_code = result.status_code
    if result.outcome == "delivered":
        row.status = DeliveryStatus.DELIVERED
        row.delivered_at = now
    elif result.outcome == "retry":
        delay = result.retry_after or backoff_seconds(row.attempts, jitter)
        row.next_attempt_at = now + timedelta(seconds=delay)
    else:
        row.status = DeliveryStatus.FAILED
        row.operation_outcome = result.operation_outcome


def build_pushers(runtime: Runtime) -> list[SinkPusher]:
    """One pusher per configured sink (none when C3N_FHIR_SINKS is unset), woken on commit."""
    pushers = [
        SinkPusher(runtime.sessions, runtime.services.flows, sink, runtime.clock)
        for sink in runtime.settings.sinks()
    ]

    def wake_all() -> None:
        for pusher in pushers:
            pusher.wake()

    if pushers:
        wake_on_commit(runtime.sessions, wake_all)
    return pushers
