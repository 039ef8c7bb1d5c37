"""The Alembic migrations build the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, inspect, select, text

from c3n_bot.store.db import make_engine, make_session_factory
from c3n_bot.store.migrate import current_revision, head_revision, upgrade
from c3n_bot.store.models import Base, Network
from tests.builders import make_network
from tests.conftest import sqlalchemy_url


@pytest.fixture
def empty_engine(empty_database_url: str) -> Iterator[Engine]:
    """An engine on a database that was never migrated."""
    engine = make_engine(sqlalchemy_url(empty_database_url))
    yield engine
    engine.dispose()


def schema_of(engine: Engine) -> dict[str, Any]:
    """Tables with their columns, indexes, unique and foreign keys, as comparable data."""
    inspector = inspect(engine)
    return {
        table: {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
            ],
            "indexes": sorted((i["name"] or "", i["unique"]) for i in inspector.get_indexes(table)),
            "unique": sorted(u["name"] or "" for u in inspector.get_unique_constraints(table)),
            "foreign_keys": sorted(f["name"] or "" for f in inspector.get_foreign_keys(table)),
        }
        for table in sorted(inspector.get_table_names())
    }


def test_empty_database_migrates_to_head(empty_engine: Engine) -> None:
    """A database with no tables reaches the newest revision and has every model table."""
    assert current_revision(empty_engine) is None
    assert schema_of(empty_engine) == {}

    upgrade(empty_engine)

    head = head_revision()
    assert head is not None
    assert current_revision(empty_engine) == head
    assert set(schema_of(empty_engine)) == set(Base.metadata.tables) | {"alembic_version"}


def test_upgrading_twice_changes_nothing(empty_engine: Engine, now: datetime) -> None:
    """A second upgrade keeps the schema, the revision and the rows."""
    upgrade(empty_engine)
    schema = schema_of(empty_engine)
    with make_session_factory(empty_engine)() as db:
        make_network(db, now=now, slug="kept")
        db.commit()

    upgrade(empty_engine)

    assert schema_of(empty_engine) == schema
    assert current_revision(empty_engine) == head_revision()
    with make_session_factory(empty_engine)() as db:
        assert db.scalar(select(func.count()).select_from(Network)) == 1


def test_models_match_migrations(engine: Engine) -> None:
    """Autogenerate finds no difference between the migrated database and the models."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(engine: Engine) -> None:
    """Every SQLite connection gets the pragmas the embedded deployment relies on."""
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        busy_timeout = connection.execute(text("PRAGMA busy_timeout")).scalar()
    assert isinstance(busy_timeout, int)
    assert busy_timeout > 0


def test_postgresql_keeps_no_statistics_for_message_texts(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite keeps no column statistics")
    query = text(
        "SELECT attrelid::regclass::text, attname, attstattarget FROM pg_attribute "
        "WHERE attrelid IN ('outbox_messages'::regclass, 'inbound_messages'::regclass) "
        "AND attname IN ('body', 'payload', 'last_error', 'address')"
    )
    with engine.connect() as connection:
        targets = {(table, column): target for table, column, target in connection.execute(query)}
    assert targets[("outbox_messages", "body")] == 0
    assert targets[("outbox_messages", "payload")] == 0
    assert targets[("outbox_messages", "last_error")] == 0
    assert targets[("inbound_messages", "body")] == 0
    # A column the claim filters on keeps the server's default (-1, or NULL from 17 on).
    assert targets[("outbox_messages", "address")] in (-1, None)
