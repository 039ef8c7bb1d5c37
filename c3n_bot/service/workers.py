"""Wiring of the background processes: the dispatcher (`worker`) and the clock (`clock`)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from c3n_bot.config import Settings
from c3n_bot.i18n import shipped_catalogs
from c3n_bot.service import alerts, community, due, nudges, schedules
from c3n_bot.service import sessions as conversation_sessions
from c3n_bot.service.clock import Clock, Task
from c3n_bot.service.context import Services
from c3n_bot.service.delivery import RateLimit, Sender, local_senders
from c3n_bot.service.dispatcher import Dispatcher
from c3n_bot.service.flows import FlowCatalog
from c3n_bot.service.outbox import NOTIFY_CHANNEL, written_channels
from c3n_bot.store.advisory import AdvisoryLease
from c3n_bot.store.base import Channel
from c3n_bot.store.checkpoint import FALLBACK_PAGES, checkpointer_for
from c3n_bot.store.db import make_engine, make_session_factory
from c3n_bot.store.notify import Listener

log = logging.getLogger(__name__)


class Worker(Protocol):
    """A background part of a process: the dispatcher, the clock, a channel receiver."""

    def start(self) -> None:
        """Begin in a background thread."""
        ...

    def stop(self) -> None:
        """Finish what is under way and end."""
        ...


def system_clock() -> datetime:
    """The real current time, aware UTC."""
    return datetime.now(UTC)


def periodic_tasks(services: Services) -> list[tuple[str, Task]]:
    """The clock's tasks, in the order a tick runs them."""

    def expire_sessions(db: Session, now: datetime) -> int:
        return conversation_sessions.expire_due(db, now, services)

    def due_work(db: Session, now: datetime) -> int:
        return due.run_due(db, now, services)

    def nudge_silent(db: Session, now: datetime) -> int:
        return nudges.nudge_silent(db, now, services)

    # Slots first, then what is due (new slots included), nudges, then expiries.
    return [
        ("materialize_schedules", schedules.materialize),
        ("run_due_work", due_work),
        ("nudge_silent", nudge_silent),
        ("expire_sessions", expire_sessions),
        ("escalate_alerts", lambda db, now: alerts.escalate_overdue(db, now, services)),
        ("community", lambda db, now: community.tick(db, now, services)),
    ]


PACED = (Channel.TELEGRAM, Channel.SMS)
CHANNEL_VALUES = frozenset(channel.value for channel in Channel)


def rate_limits(settings: Settings) -> dict[Channel, RateLimit]:
    """Provider limits: Telegram's 30 messages a second and 1 per chat; the Twilio sender's MPS."""
    return {
        Channel.TELEGRAM: RateLimit(per_second=30.0, per_recipient_per_second=1.0),
        Channel.SMS: RateLimit(per_second=settings.twilio_mps),
    }


def build_services(settings: Settings) -> Services:
    """Flows from the configured folder, the shipped translations, channels and sinks."""
    channels = {Channel.WEB, Channel.CONSOLE}
    if settings.telegram_enabled:
        channels.add(Channel.TELEGRAM)
    if settings.twilio_enabled:
        channels.add(Channel.SMS)
    return Services(
        flows=FlowCatalog.from_dir(settings.flows_path()),
        catalogs=shipped_catalogs(),
        channels=frozenset(channels),
        sinks=tuple(sink.name for sink in settings.sinks()),
    )


@dataclass
class Runtime:
    """The engine, session factory and background workers of one process."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    services: Services
    clock: Callable[[], datetime] = system_clock
    senders: dict[Channel, Sender] = field(default_factory=local_senders)
    _dispatchers: list[Dispatcher] = field(default_factory=list, init=False)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = system_clock,
        senders: Mapping[Channel, Sender] | None = None,
    ) -> Runtime:
        """Connect to the configured database."""
        # Serving processes checkpoint SQLite's log in a thread (maintenance()), not in commits.
        engine = make_engine(settings.sqlalchemy_url, sqlite_autocheckpoint=FALLBACK_PAGES)
        all_senders = {**local_senders(), **(senders or {})}
        runtime = cls(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            services=build_services(settings),
            clock=clock,
            senders=all_senders,
        )
        event.listen(runtime.sessions, "after_commit", runtime._after_commit)
        event.listen(runtime.sessions, "after_rollback", runtime._after_rollback)
        return runtime

    def dispatcher(self, channels: Sequence[Channel] | None = None) -> Dispatcher:
        """A dispatcher over some (default: all) senders, woken when outbox rows commit."""
        chosen = {c: s for c, s in self.senders.items() if channels is None or c in channels}
        dispatcher = Dispatcher(
            self.sessions,
            chosen,
            self.clock,
            limits=rate_limits(self.settings),
            lease=self.lease(chosen),
        )
        self._dispatchers.append(dispatcher)
        return dispatcher

    def lease(self, channels: Iterable[Channel]) -> AdvisoryLease | None:
        """On PostgreSQL, the lease that lets one worker at a time send a provider channel:
        its limits hold for the bot or the sender, whichever process sends."""
        paced = sorted(channel.value for channel in channels if channel in PACED)
        if self.engine.dialect.name != "postgresql" or not paced:
            return None
        return AdvisoryLease(self.settings.sqlalchemy_url, "c3n-dispatch-" + "+".join(paced))

    def listener(self, on_notify: Callable[[str], None]) -> Listener | None:
        """On PostgreSQL, a LISTEN thread for outbox commits made by other processes; it calls
        `on_notify` with each notification's payload (the channel written, or "": any)."""
        if self.engine.dialect.name != "postgresql":
            return None
        return Listener(self.settings.sqlalchemy_url, NOTIFY_CHANNEL, on_notify)

    def maintenance(self) -> list[Worker]:
        """What every serving process runs for its database: SQLite's log checkpoints."""
        checkpointer = checkpointer_for(self.engine)
        return [] if checkpointer is None else [checkpointer]

    def background(
        self, *, dispatch: bool = True, tick: bool = True, extra: Sequence[Worker] = ()
    ) -> list[Worker]:
        """The workers this process runs, in start order (stopped in reverse)."""
        workers: list[Worker] = self.maintenance()
        if dispatch:
            # One dispatcher per provider channel: pacing one never holds up another.
            groups = [[c] for c in self.senders if c in PACED] + [
                [c for c in self.senders if c not in PACED]
            ]
            dispatchers = [self.dispatcher(group) for group in groups if group]
            workers.extend(dispatchers)

            def wake_for(payload: str) -> None:
                channels = {Channel(payload)} if payload in CHANNEL_VALUES else None
                for dispatcher in dispatchers:
                    dispatcher.wake_for(channels)

            listener = self.listener(wake_for)
            if listener is not None:
                workers.append(listener)
        if tick:
            workers.append(self.ticker())
        return [*workers, *extra]

    def ticker(self) -> Clock:
        """A clock running the periodic tasks."""
        return Clock(self.sessions, periodic_tasks(self.services), self.clock)

    def _after_rollback(self, session: Session) -> None:
        written_channels(session)

    def _after_commit(self, session: Session) -> None:
        # In-process wake-up: a reply leaves at once instead of after the idle interval.
        channels = written_channels(session)
        if channels:
            for dispatcher in self._dispatchers:
                dispatcher.wake_for(channels)


def run_worker(
    settings: Settings,
    senders: Mapping[Channel, Sender] | None = None,
    extra: Callable[[Runtime], Sequence[Worker]] | None = None,
) -> None:
    """Run the dispatcher (and `extra` workers, e.g. sink pushers) until SIGTERM or SIGINT."""
    runtime = Runtime.build(settings, senders=senders)
    more = extra(runtime) if extra else ()
    _run_until_signal(runtime, runtime.background(tick=False, extra=more))


def run_clock(
    settings: Settings, receivers: Callable[[Runtime], Sequence[Worker]] | None = None
) -> None:
    """Run the clock (and channel receivers such as Telegram polling) until a signal."""
    runtime = Runtime.build(settings)
    extra = receivers(runtime) if receivers else ()
    _run_until_signal(runtime, runtime.background(dispatch=False, extra=extra))


def _run_until_signal(runtime: Runtime, workers: Sequence[Worker]) -> None:
    for worker in workers:
        worker.start()
    _wait_for_signal()
    for worker in reversed(workers):
        worker.stop()
    runtime.engine.dispose()


def _wait_for_signal() -> None:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log.info("process.ready")
    stop.wait()
    log.info("process.stopping")
