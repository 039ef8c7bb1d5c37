"""Webhook messages handled by one writer thread, many to a transaction (group commit).

A webhook must not answer 200 before its message is stored and answered, or the provider
would not deliver it again after a crash. Handling each request in its own transaction on
its own thread makes concurrent requests queue on the database's write lock (SQLite's busy
handler sleeps and polls) and on the interpreter lock. Here requests wait on a future while
one thread takes what has arrived, in arrival order, handles it in one transaction and
commits once; each request is answered after that commit. If the batch fails, each message
is handled again alone, so one bad message fails only its own request.

On PostgreSQL a transaction costs the writer about 3 ms of CPU whatever it holds (a message
alone 4.5 ms, one of sixteen 1.6 ms), and PostgreSQL its commit: the writer waits up to
GATHER_SECONDS after the first message for others to share it. At 100 webhooks a second a
transaction then holds two or three, not one; on SQLite a transaction is cheap and the
writer does not wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from c3n_bot.service import inbound_batch
from c3n_bot.service.context import Services
from c3n_bot.service.conversations import Inbound, Outcome, handle_inbound
from c3n_bot.store import deferred

log = logging.getLogger(__name__)
MAX_BATCH = 64
GATHER_SECONDS = 0.010
# After these, what was read ahead for the batch's other senders still holds: an answer or
# a flow started by keyword changes only its own sender's session and replies.
READ_AHEAD_KEPT = frozenset({Outcome.ANSWERED, Outcome.STARTED, Outcome.DUPLICATE})


Result = tuple[Outcome | None, BaseException | None]


@dataclass(frozen=True)
class _Job:
    inbound: Inbound
    now: datetime
    # The request's context: the writer's log lines carry the request id of their webhook.
    context: contextvars.Context
    # Where the result goes: an asyncio future on its loop, or a future a thread waits on.
    loop: asyncio.AbstractEventLoop | None
    waiter: asyncio.Future[Outcome] | Future[Outcome]


class InboundQueue:
    """Hands inbound messages to a writer thread and waits for their commit."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        services: Services,
        *,
        max_batch: int = MAX_BATCH,
        gather: float = 0.0,
        handle: Callable[..., Outcome] = handle_inbound,
    ) -> None:
        self._sessions = sessions
        self._services = services
        self._max_batch = max_batch
        self._gather = gather
        self._handle = handle
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def handle(self, inbound: Inbound, now: datetime) -> Outcome:
        """Store and act on one message; returns once committed, or raises what failed it."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Outcome] = loop.create_future()
        self._put(_Job(inbound, now, contextvars.copy_context(), loop, waiter))
        # A client that hangs up cancels only its wait: the writer still stores the message.
        return await waiter

    def handle_now(self, inbound: Inbound, now: datetime) -> Outcome:
        """The same from a thread that may block (a sync route, a test)."""
        waiter: Future[Outcome] = Future()
        self._put(_Job(inbound, now, contextvars.copy_context(), None, waiter))
        return waiter.result()

    def stop(self) -> None:
        """Finish what is queued, then end the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            thread.join()

    def _put(self, job: _Job) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="c3n-inbound", daemon=True
                    )
                    self._thread.start()
        self._jobs.put(job)

    def _run(self) -> None:
        while True:
            first = self._jobs.get()
            if first is None:
                return
            batch = [first]
            stopping = False
            # Real time, not the service clock: how long the first message waits for company.
            deadline = time.perf_counter() + self._gather
            while len(batch) < self._max_batch:
                try:
                    job = self._jobs.get(timeout=max(0.0, deadline - time.perf_counter()))
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                batch.append(job)
            _deliver(batch, self._settle(batch))
            if stopping:
                return

    def _settle(self, batch: list[_Job]) -> list[Result]:
        if len(batch) > 1:
            try:
                return [(outcome, None) for outcome in self._in_transaction(batch)]
            except Exception:
                # One message may have failed the whole batch: handle each alone below.
                log.warning("inbound.batch_failed", extra={"size": len(batch)})
        results: list[Result] = []
        for job in batch:
            try:
                results.append((self._in_transaction([job])[0], None))
            except Exception as exc:
                log.warning("inbound.failed", extra={"error": type(exc).__name__})
                results.append((None, exc))
        return results

    def _in_transaction(self, jobs: list[_Job]) -> list[Outcome]:
        with self._sessions() as db:
            # Each answer's session step and reply wait for the next other statement or the
            # commit, and go together: one UPDATE and one INSERT for the batch's answers.
            deferred.defer_writes(db)
            if len(jobs) > 1:
                inbound_batch.read_ahead(db, [(job.inbound, job.now) for job in jobs])
            outcomes = [self._one(db, job) for job in jobs]
            db.commit()
        return outcomes

    def _one(self, db: Session, job: _Job) -> Outcome:
        inbound = job.inbound
        outcome = job.context.run(
            self._handle, db, inbound=inbound, services=self._services, now=job.now
        )
        inbound_batch.forget_sender(db, inbound.channel, inbound.address)
        if outcome not in READ_AHEAD_KEPT:
            inbound_batch.forget_all(db)  # an enrollment, a keyword, a new flow: start afresh
        return outcome


def gather_for(dialect: str) -> float:
    """How long the writer waits for a transaction's company on this database."""
    return GATHER_SECONDS if dialect == "postgresql" else 0.0


def _deliver(batch: list[_Job], results: list[Result]) -> None:
    # One wake-up per event loop for the whole batch, not one per message.
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, Result]]] = {}
    for job, result in zip(batch, results, strict=True):
        if job.loop is None:
            _resolve([(job, result)])
        else:
            by_loop.setdefault(job.loop, []).append((job, result))
    for loop, pairs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
            loop.call_soon_threadsafe(_resolve, pairs)


def _resolve(pairs: list[tuple[_Job, Result]]) -> None:
    for job, (outcome, error) in pairs:
        if job.waiter.done():
            continue
        if error is not None:
            job.waiter.set_exception(error)
        else:
            assert outcome is not None
            job.waiter.set_result(outcome)
