"""Statuses written into a statement's text rather than bound, for the plan cache.

psycopg prepares a statement it has run five times, and PostgreSQL may then plan it once for
any parameters (a generic plan). A generic plan can use a partial index (`WHERE status =
'active'`) only when the statement itself says `status = 'active'`. With the status bound, a
plan made while a table was nearly empty kept walking every active row on each later run:
the claim read the whole outbox backlog, and a webhook batch's read of its senders' sessions
walked every active session (16 ms a batch in bench.load, until autovacuum's ANALYZE).
"""

from __future__ import annotations

import enum

from sqlalchemy import ColumnElement, literal_column


def inline(status: enum.StrEnum) -> ColumnElement[str]:
    """The status as an SQL string literal (our own enum values only, never input)."""
    assert "'" not in status.value, status
    return literal_column(f"'{status.value}'")
