"""Wiring of the background processes: the dispatcher (`worker`) and the clock (`clock`)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from c3n_bot.config import Settings
from c3n_bot.i18n import shipped_catalogs
from c3n_bot.service import sessions as conversation_sessions
from c3n_bot.service.clock import Clock, Task
from c3n_bot.service.context import Services
from c3n_bot.service.dispatcher import Dispatcher, Sender, default_senders
from c3n_bot.service.flows import FlowCatalog
from c3n_bot.store.base import Channel
from c3n_bot.store.db import make_engine, make_session_factory

log = logging.getLogger(__name__)


def system_clock() -> datetime:
    """The real current time, aware UTC."""
    return datetime.now(UTC)


def periodic_tasks(services: Services) -> list[tuple[str, Task]]:
    """The clock's tasks, in the order a tick runs them."""

    def expire_sessions(db: Session, now: datetime) -> int:
        return conversation_sessions.expire_due(db, now, services)

    return [("expire_sessions", expire_sessions)]


def build_services(settings: Settings) -> Services:
    """Flows from the configured folder and the shipped translations."""
    return Services(flows=FlowCatalog.from_dir(settings.flows_path()), catalogs=shipped_catalogs())


@dataclass
class Runtime:
    """The engine, session factory and background workers of one process."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    services: Services
    clock: Callable[[], datetime] = system_clock
    senders: dict[Channel, Sender] = field(default_factory=default_senders)
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
        engine = make_engine(settings.sqlalchemy_url)
        runtime = cls(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            services=build_services(settings),
            clock=clock,
            senders=dict(senders) if senders is not None else default_senders(),
        )
        event.listen(runtime.sessions, "after_commit", runtime._after_commit)
        return runtime

    def dispatcher(self) -> Dispatcher:
        """A dispatcher over this runtime's senders, woken when outbox rows are committed."""
        dispatcher = Dispatcher(self.sessions, self.senders, self.clock)
        self._dispatchers.append(dispatcher)
        return dispatcher

    def ticker(self) -> Clock:
        """A clock running the periodic tasks."""
        return Clock(self.sessions, periodic_tasks(self.services), self.clock)

    def _after_commit(self, session: Session) -> None:
        # In-process wake-up: a reply leaves at once instead of after the idle interval.
        if session.info.pop("outbox_written", False):
            for dispatcher in self._dispatchers:
                dispatcher.wake()


def run_worker(settings: Settings, senders: Mapping[Channel, Sender] | None = None) -> None:
    """Run the dispatcher until SIGTERM or SIGINT."""
    runtime = Runtime.build(settings, senders=senders)
    dispatcher = runtime.dispatcher()
    dispatcher.start()
    _wait_for_signal()
    dispatcher.stop()
    runtime.engine.dispose()


def run_clock(settings: Settings) -> None:
    """Run the clock until SIGTERM or SIGINT."""
    runtime = Runtime.build(settings)
    ticker = runtime.ticker()
    ticker.start()
    _wait_for_signal()
    ticker.stop()
    runtime.engine.dispose()


def _wait_for_signal() -> None:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log.info("process.ready")
    stop.wait()
    log.info("process.stopping")
