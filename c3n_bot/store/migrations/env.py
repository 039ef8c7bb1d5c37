"""Alembic environment: runs against the connection or URL the caller configured."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from c3n_bot.store.db import make_engine
from c3n_bot.store.models import Base

# Any fixed number: two release processes on PostgreSQL migrate one after the other.
MIGRATION_LOCK_ID = 7_331_003


def run_migrations(connection: Connection) -> None:
    """Run migrations on one connection, serialised by an advisory lock on PostgreSQL."""
    is_postgres = connection.dialect.name == "postgresql"
    if is_postgres:
        connection.execute(text(f"SELECT pg_advisory_lock({MIGRATION_LOCK_ID})"))
        connection.commit()
    try:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if is_postgres:
            connection.execute(text(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_ID})"))
            connection.commit()


config = context.config
existing = config.attributes.get("connection")
if existing is not None:
    run_migrations(existing)
else:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        run_migrations(conn)
    engine.dispose()
