"""SQLite's WAL checkpoints in a background thread instead of inside a writer's commit.

By default the commit that grows the write-ahead log past 1,000 pages copies it back into
the database file and syncs it, there and then: 10-70 ms on the development machine, which
every webhook waiting on that group commit shares (bench.inbound's p99). Serving processes
let a thread here run passive checkpoints every half second instead: they take no write
lock, so the writer goes on appending meanwhile. Connections still checkpoint in a commit
past FALLBACK_PAGES, so the log stays bounded if this thread is not running or falls behind.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

from sqlalchemy import Engine

log = logging.getLogger(__name__)

EVERY_SECONDS = 0.5
FALLBACK_PAGES = 10_000  # ~40 MiB of log; SQLite's own default is 1,000
BUSY_TIMEOUT_SECONDS = 10.0


class Checkpointer:
    """A daemon thread that checkpoints one SQLite database file while the process runs."""

    def __init__(self, database: Path, *, every: float = EVERY_SECONDS) -> None:
        self._database = database
        self._every = every
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="c3n-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def connect(self) -> sqlite3.Connection:
        """The thread's own connection to the database."""
        return sqlite3.connect(self._database, timeout=BUSY_TIMEOUT_SECONDS)

    def checkpoint(self, connection: sqlite3.Connection) -> tuple[int, int, int]:
        """One passive checkpoint: (busy, log pages, pages copied back)."""
        busy, pages, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(busy), int(pages), int(copied)

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        failing = False
        try:
            while not self._stopping.wait(self._every):
                try:
                    if connection is None:
                        connection = self.connect()
                    self.checkpoint(connection)
                    failing = False
                except sqlite3.Error as exc:  # the next round tries again
                    if not failing:  # once per outage, not twice a second
                        log.warning("checkpoint.failed", extra={"error": type(exc).__name__})
                    failing = True
        finally:
            if connection is not None:
                connection.close()


def checkpointer_for(engine: Engine) -> Checkpointer | None:
    """A checkpointer for an engine on a SQLite file; None for PostgreSQL or memory."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    return Checkpointer(Path(database))
