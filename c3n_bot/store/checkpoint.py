"""SQLite's WAL checkpoints in a background thread instead of inside a writer's commit.

By default the commit that grows the write-ahead log past 1,000 pages copies it back into
the database file and syncs it, there and then: 10-70 ms on the development machine, which
every webhook waiting on that group commit shares (bench.inbound's p99). Serving processes
let a thread here run passive checkpoints every half second instead: they take no write
lock, so the writer goes on appending meanwhile. Connections still checkpoint in a commit
past FALLBACK_PAGES, so the log stays bounded if this thread is not running or falls behind.

A passive checkpoint never lets the log start again from its beginning while a busy writer
keeps appending: the writer restarts it only if every frame was copied back when its
transaction began, and a passive round always ends a few commits behind. The log then grew
to FALLBACK_PAGES, and the writer's commit there checkpointed and synced inline: one stall of
50-100 ms every few seconds under steady traffic. So once the log is past RESTART_PAGES,
the round that has just copied it back follows with a RESTART checkpoint. That one holds
the write lock, but only to copy the few frames written since and sync them, and it waits
at most RESTART_WAIT_MS for the writer or for readers, or gives up until the next round.
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
RESTART_PAGES = 2_000  # ~8 MiB of log
RESTART_WAIT_MS = 20  # at most this long with writers held back, or try again next round


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
        return sqlite3.connect(self._database, timeout=RESTART_WAIT_MS / 1000)

    def checkpoint(self, connection: sqlite3.Connection) -> tuple[int, int, int]:
        """A passive checkpoint, then a restart if the log is long: (busy, log pages, copied)."""
        busy, pages, copied = _checkpoint(connection, "PASSIVE")
        if pages >= RESTART_PAGES:
            busy, pages, copied = _checkpoint(connection, "RESTART")
        return busy, pages, copied

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


def _checkpoint(connection: sqlite3.Connection, mode: str) -> tuple[int, int, int]:
    busy, pages, copied = connection.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    return int(busy), int(pages), int(copied)


def checkpointer_for(engine: Engine) -> Checkpointer | None:
    """A checkpointer for an engine on a SQLite file; None for PostgreSQL or memory."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    return Checkpointer(Path(database))
