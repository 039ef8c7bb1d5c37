"""Database fixtures: every DB test runs on SQLite and on a real PostgreSQL, freshly migrated.

A test that asks for ``database_url`` (or ``engine``, ``db``, ``settings``) runs twice, as
``[sqlite]`` and ``[postgresql]``. Migrations run once per session per backend:

- SQLite: one migrated template file, copied into the test's ``tmp_path``.
- PostgreSQL: one migrated database, emptied with one ``TRUNCATE`` before each test. Its
  server is ``--postgres-url`` / ``$C3N_TEST_DATABASE_URL`` when given, otherwise a
  throwaway server started (lazily, on the first ``[postgresql]`` test) from local
  binaries. No server is a failure, never a skip.

Tests that change the schema itself must use ``empty_database_url``, never the shared one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from c3n_bot.config import ENV_PREFIX, Settings
from c3n_bot.store.db import make_engine, make_session_factory
from c3n_bot.store.migrate import upgrade
from c3n_bot.store.models import Base
from tests.pgserver import PostgresServer, PostgresUnavailable

BACKENDS = ["sqlite", "postgresql"]
TEST_SECRET_KEY = "test-only-secret-key-0123456789abcdefghi"
TEST_PUBLIC_URL = "http://testserver"
FIXED_NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
# A test that leaves a transaction open would make TRUNCATE wait forever; fail instead.
TRUNCATE_LOCK_TIMEOUT = "10s"
# Read once at start-up: a test may clear C3N_* variables before the server starts lazily.
PG_BINDIR_AT_START = os.environ.get("C3N_PG_BINDIR", "").strip() or None


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add --postgres-url, defaulting to $C3N_TEST_DATABASE_URL."""
    parser.addoption(
        "--postgres-url",
        default=os.environ.get("C3N_TEST_DATABASE_URL", "").strip() or None,
        help="PostgreSQL for the [postgresql] tests (default $C3N_TEST_DATABASE_URL; "
        "when unset, a throwaway server is started from local binaries)",
    )


def sqlalchemy_url(url: str) -> str:
    """A C3N_DATABASE_URL value with the driver SQLAlchemy uses (as Settings.sqlalchemy_url)."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url.removeprefix(scheme)
    return url


def migrate(url: str) -> None:
    """Bring the database at a C3N_DATABASE_URL value to the head revision."""
    engine = make_engine(sqlalchemy_url(url))
    try:
        upgrade(engine)
    finally:
        engine.dispose()


# -- PostgreSQL ---------------------------------------------------------------------------


def _plain_postgres_url(url: str) -> str:
    # postgres://, postgresql+psycopg:// ... -> postgresql:// (what libpq and users write).
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class PostgresDatabases:
    """Creates throwaway databases on one PostgreSQL server for this test run.

    Each is a new database; when the given URL lacks CREATE DATABASE rights, each is a new
    schema inside that database instead, selected by ``search_path`` in the URL.
    """

    base_url: str
    use_schemas: bool = False
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    created: list[str] = field(default_factory=list)

    def create(self, label: str) -> str:
        """Create an empty database (or schema) and return its postgresql:// URL."""
        name = f"c3n_{label}_{self.run_id}_{len(self.created)}"
        problem = self._create(name)
        if problem is not None:
            pytest.fail(problem, pytrace=False)
        self.created.append(name)
        url = make_url(self.base_url)
        if self.use_schemas:
            url = url.update_query_dict({"options": f"-csearch_path={name}"})
        else:
            url = url.set(database=name)
        return url.render_as_string(hide_password=False)

    def _create(self, name: str) -> str | None:
        # Returns the problem rather than failing inside `except`: the report stays unchained.
        try:
            if not self.use_schemas:
                try:
                    self._execute("CREATE DATABASE {}", name)
                    return None
                except psycopg.errors.InsufficientPrivilege:
                    self.use_schemas = True
            self._execute("CREATE SCHEMA {}", name)
        except psycopg.Error as exc:
            shown = make_url(self.base_url).render_as_string(hide_password=True)
            return f"cannot create a test database on {shown}: {exc}"
        return None

    def drop_all(self) -> None:
        """Drop what this run created (best effort: a leftover is not a test failure)."""
        statement = (
            "DROP SCHEMA {} CASCADE" if self.use_schemas else "DROP DATABASE {} WITH (FORCE)"
        )
        for name in self.created:
            with contextlib.suppress(psycopg.Error):
                self._execute(statement, name)

    def _execute(self, statement: str, name: str) -> None:
        with psycopg.connect(self.base_url, autocommit=True) as conn:
            conn.execute(sql.SQL(statement).format(sql.Identifier(name)))


@dataclass
class PostgresTemplate:
    """The session's migrated PostgreSQL database, emptied before each test."""

    url: str
    connection: psycopg.Connection[tuple[Any, ...]]

    def reset(self) -> None:
        """Delete every row of every model table and restart their id sequences."""
        tables = sql.SQL(", ").join(
            sql.Identifier(table.name) for table in Base.metadata.sorted_tables
        )
        statement = sql.SQL("TRUNCATE TABLE {} RESTART IDENTITY CASCADE").format(tables)
        try:
            self.connection.execute(statement)
            return
        except psycopg.errors.LockNotAvailable:
            pass
        pytest.fail(
            "TRUNCATE timed out: an earlier test left a connection in a transaction "
            "(close the sessions and dispose the engines you create)",
            pytrace=False,
        )


def _start_postgres_server() -> PostgresServer:
    bindir = Path(PG_BINDIR_AT_START) if PG_BINDIR_AT_START else None
    try:
        return PostgresServer.start_or_explain(bindir)
    except PostgresUnavailable as exc:
        reason = str(exc)
    pytest.fail(reason, pytrace=False)  # outside `except`: the explanation alone, unchained


@pytest.fixture(scope="session")
def postgres_databases(pytestconfig: pytest.Config) -> Iterator[PostgresDatabases]:
    """Where [postgresql] tests get databases: the given server, or a throwaway one."""
    given: str | None = pytestconfig.getoption("postgres_url")
    if given:
        databases = PostgresDatabases(_plain_postgres_url(given))
        yield databases
        databases.drop_all()
        return
    server = _start_postgres_server()
    try:
        yield PostgresDatabases(server.url)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_template(postgres_databases: PostgresDatabases) -> Iterator[PostgresTemplate]:
    """One migrated PostgreSQL database for the session, with a connection that resets it."""
    url = postgres_databases.create("test")
    migrate(url)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"SET lock_timeout = '{TRUNCATE_LOCK_TIMEOUT}'")
        yield PostgresTemplate(url=url, connection=connection)


# -- SQLite -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file for the session; tests get copies of it."""
    path = tmp_path_factory.mktemp("sqlite-template") / "c3n.db"
    migrate(f"sqlite:///{path}")
    return path


def _copy_sqlite(template: Path, target: Path) -> str:
    # Disposing the engine checkpoints the WAL; copy it anyway should one be left behind.
    for suffix in ("", "-wal"):
        source = template.with_name(template.name + suffix)
        if source.exists():
            shutil.copyfile(source, target.with_name(target.name + suffix))
    return f"sqlite:///{target}"


# -- what tests use -----------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend of this test run: "sqlite" or "postgresql"."""
    name: str = request.param
    return name


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database holding no rows, as a C3N_DATABASE_URL value."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        return _copy_sqlite(template, tmp_path / "c3n.db")
    postgres: PostgresTemplate = request.getfixturevalue("postgres_template")
    postgres.reset()
    return postgres.url


@pytest.fixture
def empty_database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with no tables at all (never migrated), as a C3N_DATABASE_URL value."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    return databases.create("empty")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on the test's database, disposed after the test."""
    engine = make_engine(sqlalchemy_url(database_url))
    yield engine
    engine.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session on the test's database, closed (uncommitted work rolled back) after."""
    with make_session_factory(engine)() as session:
        yield session


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No C3N_* variables and an empty working directory (so no .env); returns that dir."""
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def settings(clean_env: Path, database_url: str) -> Settings:
    """Production-like settings (no demo) on the test's database, untouched by the machine."""
    return Settings(
        demo=False,
        secret_key=SecretStr(TEST_SECRET_KEY),
        database_url=database_url,
        public_url=TEST_PUBLIC_URL,
    )


@pytest.fixture
def now() -> datetime:
    """The fixed current time of a test: 2026-03-02 15:00 UTC."""
    return FIXED_NOW


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id with minimal cost: the same algorithm and checks, a fraction of the time."""
    from argon2 import PasswordHasher

    from c3n_bot.service import staff

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(staff, "_hasher", cheap)
    monkeypatch.setattr(staff, "_DUMMY_HASH", cheap.hash("not-a-real-password"))
