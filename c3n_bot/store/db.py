"""Engine and session factory: SQLite tuned for the embedded default, PostgreSQL for production."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 10_000
# Execution option of a connection that only reads (see snapshot_session).
READ_SNAPSHOT = "c3n_read_snapshot"


def make_engine(url: str, *, sqlite_autocheckpoint: int | None = None, **kwargs: Any) -> Engine:
    """An engine for a SQLAlchemy URL; SQLite gets WAL, foreign keys and a busy timeout, and
    `sqlite_autocheckpoint` (log pages) when a store.checkpoint thread does the checkpoints."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _postgresql_on_connect)
        return engine
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    if sqlite_autocheckpoint is not None:
        pages = int(sqlite_autocheckpoint)

        def _autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={pages}")

        event.listen(engine, "connect", _autocheckpoint)
    return engine


def _postgresql_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # psycopg prepares a statement it has run five times, and PostgreSQL may then plan it
    # once for all parameters and keep that plan until the next ANALYZE of its tables. A plan
    # made while a table was nearly empty (a new deployment, a bulk enrollment, the start of
    # bench.load) walked every active session for each webhook batch, 12-16 ms where the
    # statement needs 0.2. Our statements are short and plan in microseconds: plan each run
    # for its own parameters and the tables as they are (the parse is still kept).
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_custom_plan")
    dbapi_connection.commit()


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_on_begin(connection: Any) -> None:
    # IMMEDIATE takes the write lock up front: a deferred transaction that later writes can
    # fail with SQLITE_BUSY without waiting, whereas this one waits for the busy timeout.
    # A read-only snapshot must not take it: an export would stop every writer for minutes.
    if connection.get_execution_options().get(READ_SNAPSHOT):
        connection.exec_driver_sql("BEGIN DEFERRED")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def snapshot_session(engine: Engine) -> Iterator[Session]:
    """A session for long reads (exports) that sees one snapshot and never blocks writers.

    SQLite: a deferred transaction, a WAL reader beside the writer. PostgreSQL: REPEATABLE
    READ, READ ONLY. Either way a count and the rows it counted agree.
    """
    if engine.dialect.name == "sqlite":
        options: dict[str, Any] = {READ_SNAPSHOT: True}
    else:
        options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    with (
        engine.connect() as connection,
        Session(bind=connection.execution_options(**options)) as db,
    ):
        yield db
