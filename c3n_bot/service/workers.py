"""Wiring of the background processes: the dispatcher (`worker`) and the clock (`clock`)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from c3n_bot.config import Settings
from c3n_bot.service.clock import Clock, Task
from c3n_bot.service.dispatcher import Dispatcher, Sender, default_senders
from c3n_bot.store.base import Channel
from c3n_bot.store.db import make_engine, make_session_factory

log = logging.getLogger(__name__)


def system_clock() -> datetime:
    """The real current time, aware UTC."""
    return datetime.now(UTC)


def periodic_tasks() -> list[tuple[str, Task]]:
    """The clock's tasks, in the order a tick runs them."""
    return []


@dataclass
class Runtime:
    """The engine, session factory and background workers of one process."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Callable[[], datetime] = system_clock
    senders: dict[Channel, Sender] = field(default_factory=default_senders)

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
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            clock=clock,
            senders=dict(senders) if senders is not None else default_senders(),
        )

    def dispatcher(self) -> Dispatcher:
        """A dispatcher over this runtime's senders."""
        return Dispatcher(self.sessions, self.senders, self.clock)

    def ticker(self) -> Clock:
        """A clock running the periodic tasks."""
        return Clock(self.sessions, periodic_tasks(), self.clock)


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
