"""Dialect-aware inserts that the database de-duplicates (ON CONFLICT DO NOTHING)."""

from __future__ import annotations

import functools
from typing import Any, cast

from sqlalchemy import Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from c3n_bot.store.base import Base


def insert_ignoring_duplicates(
    db: Session, model: type[Base], values: dict[str, Any], *, returning: Any
) -> Any | None:
    """Insert one row unless a unique constraint already holds it; the new key, or None."""
    statement = _insert_or_ignore(db.get_bind().dialect.name, model, returning)
    return db.execute(statement, values).scalar_one_or_none()


@functools.cache
def _insert_or_ignore(dialect: str, model: type[Base], returning: Any) -> Insert:
    # Built once per table: a webhook's hot path should not rebuild and re-key a statement.
    module = postgresql if dialect == "postgresql" else sqlite
    table = cast(Table, model.__table__)
    columns = returning if isinstance(returning, tuple) else (returning,)
    statement: Insert = module.insert(table).on_conflict_do_nothing().returning(*columns)
    return statement


def insert_many_ignoring_duplicates(
    db: Session, model: type[Base], rows: list[dict[str, Any]], *, returning: tuple[Any, ...]
) -> list[tuple[Any, ...]]:
    """Insert rows in one statement, skipping those a unique constraint already holds;
    `returning` of the rows actually inserted, in no particular order."""
    if not rows:
        return []
    statement = _insert_or_ignore(db.get_bind().dialect.name, model, returning)
    return [tuple(row) for row in db.execute(statement, rows)]


def insert_ignoring_duplicates_bulk(
    db: Session, model: type[Base], rows: list[dict[str, Any]]
) -> int:
    """Insert many rows, skipping those a unique constraint already holds; how many were new."""
    if not rows:
        return 0
    dialect = db.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    key = next(iter(model.__mapper__.primary_key))
    # One statement compiled once, executed for all rows: SQLAlchemy batches the parameter
    # sets ("insertmanyvalues") and still returns the keys of the rows actually inserted.
    statement = module.insert(model.__table__).on_conflict_do_nothing().returning(key)
    return len(db.execute(statement, rows).all())
