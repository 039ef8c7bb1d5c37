"""The clock process: one APScheduler tick a minute runs every periodic task, set-based."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

# A task does one set-based pass of due work in its own transaction and says how much it did.
Task = Callable[[Session, datetime], int]


class Clock:
    """Runs the tasks once a minute; tasks are idempotent, so a second clock is harmless."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        tasks: Sequence[tuple[str, Task]],
        clock: Callable[[], datetime],
        *,
        interval_seconds: int = 60,
    ) -> None:
        self._sessions = sessions
        self._tasks = list(tasks)
        self._clock = clock
        # Memory job store: APScheduler's job store must not be shared between processes.
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._scheduler.add_job(
            self.tick,
            "interval",
            seconds=interval_seconds,
            id="tick",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=interval_seconds,
        )

    def tick(self) -> dict[str, int]:
        """Run every task once, each in its own transaction; one failing does not stop others."""
        done: dict[str, int] = {}
        for name, task in self._tasks:
            now = self._clock()
            try:
                with self._sessions.begin() as db:
                    done[name] = task(db, now)
            except Exception:
                log.exception("clock.task_failed", extra={"task": name})
                continue
            if done[name]:
                log.info("clock.task", extra={"task": name, "count": done[name]})
        return done

    def start(self) -> None:
        """Start ticking in a background thread (first tick at once)."""
        self._scheduler.start()
        self._scheduler.modify_job("tick", next_run_time=self._clock())

    def stop(self) -> None:
        """Stop ticking; a running tick finishes first."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
