"""SQLite's log checkpoints: done by a thread in serving processes, not in a writer's commit."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from c3n_bot.store.checkpoint import (
    FALLBACK_PAGES,
    RESTART_PAGES,
    Checkpointer,
    checkpointer_for,
)
from c3n_bot.store.db import make_engine

ROWS = 3_000  # ~1,500 log pages of 2 KiB rows: past SQLite's default of 1,000
_engines: list[Engine] = []  # kept open until the end: see _write


def _write(url: str, *, autocheckpoint: int | None, rows: int = ROWS) -> Path:
    engine = make_engine(url, sqlite_autocheckpoint=autocheckpoint)
    # Never disposed: closing the last connection would checkpoint and delete the log.
    _engines.append(engine)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body TEXT)"))
    for _ in range(0, rows, 100):
        with engine.begin() as connection:  # a commit per 100 rows, as a busy writer
            connection.execute(
                text("INSERT INTO t (body) VALUES (:body)"),
                [{"body": "x" * 2048} for _ in range(100)],
            )
    with engine.connect() as connection:
        pages = connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
        assert pages == (autocheckpoint or 1000)
    return Path(str(engine.url.database))


def _log_pages(database: Path) -> int:
    wal = database.with_name(database.name + "-wal")
    return wal.stat().st_size // 4096 if wal.exists() else 0


def test_commits_leave_the_log_to_the_checkpointer(tmp_path: Path) -> None:
    # By default a commit past 1,000 pages checkpoints, and the log restarts from its start.
    default = _write(f"sqlite:///{tmp_path / 'default.db'}", autocheckpoint=None)
    # With the thread's fallback the commits never do: the log holds every row.
    deferred = _write(f"sqlite:///{tmp_path / 'deferred.db'}", autocheckpoint=FALLBACK_PAGES)
    assert _log_pages(deferred) > 1_400 > _log_pages(default)
    connection = sqlite3.connect(deferred)
    try:
        busy, logged, copied = Checkpointer(deferred).checkpoint(connection)
        assert (busy, copied) == (0, logged) and logged > 1_400
        assert connection.execute("SELECT count(*) FROM t").fetchone() == (ROWS,)
    finally:
        connection.close()


def test_a_long_log_starts_again_from_its_beginning(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c3n.db'}"
    database = _write(url, autocheckpoint=FALLBACK_PAGES, rows=2 * ROWS)
    assert _log_pages(database) > RESTART_PAGES
    connection = sqlite3.connect(database)
    try:
        busy, logged, copied = Checkpointer(database).checkpoint(connection)
        assert (busy, copied) == (0, logged) and logged > RESTART_PAGES
        _write(url, autocheckpoint=FALLBACK_PAGES, rows=100)  # the next writer's commit
        # ...went to the log's start: a passive checkpoint alone leaves it appending.
        assert Checkpointer(database).checkpoint(connection)[1] < logged // 10
        assert connection.execute("SELECT count(*) FROM t").fetchone() == (2 * ROWS + 100,)
    finally:
        connection.close()


def test_a_writer_mid_transaction_holds_off_the_restart_not_the_other_way(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'c3n.db'}"
    database = _write(url, autocheckpoint=FALLBACK_PAGES, rows=2 * ROWS)
    writer = sqlite3.connect(database, isolation_level=None)
    connection = sqlite3.connect(database)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO t (body) VALUES ('late')")
        # The passive round copies what was committed; the restart gives up, busy.
        busy, logged, copied = Checkpointer(database).checkpoint(connection)
        assert busy == 1 and copied == logged > RESTART_PAGES
        writer.execute("COMMIT")
    finally:
        writer.close()
        connection.close()


def test_the_thread_starts_and_stops(tmp_path: Path) -> None:
    database = tmp_path / "c3n.db"
    sqlite3.connect(database).close()
    checkpointer = Checkpointer(database, every=3600)
    checkpointer.start()
    checkpointer.stop()  # returns once the thread has ended, without waiting an hour
    checkpointer.stop()  # and again is harmless


def test_only_a_sqlite_file_gets_a_checkpointer(tmp_path: Path) -> None:
    assert checkpointer_for(make_engine(f"sqlite:///{tmp_path / 'c3n.db'}")) is not None
    assert checkpointer_for(make_engine("sqlite://")) is None
    assert checkpointer_for(make_engine("postgresql+psycopg://c3n@localhost/c3n")) is None


def test_a_database_that_cannot_be_opened_is_tried_again_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "no-such-dir" / "c3n.db"

    class Counting(Checkpointer):
        attempts = 0

        def connect(self) -> sqlite3.Connection:
            self.attempts += 1
            if self.attempts == 3:  # the directory appears before the third round,
                missing.parent.mkdir()
                self._stopping.set()  # which is the last
            return super().connect()

    checkpointer = Counting(missing, every=0)
    with caplog.at_level(logging.WARNING, logger="c3n_bot.store.checkpoint"):
        checkpointer._run()  # in this thread: returns when stopped, raising nothing
    # Two failed rounds, one warning; then it connected once and checkpointed.
    assert checkpointer.attempts == 3
    assert caplog.messages.count("checkpoint.failed") == 1
