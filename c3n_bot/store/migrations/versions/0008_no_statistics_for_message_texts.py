"""PostgreSQL keeps no statistics for message texts and payloads.

Nothing filters or joins on them, and they are most of what ANALYZE reads: on an outbox of
124,000 rows ANALYZE took 520-620 ms of a core, 166 ms without them. Autovacuum analyzes the
outbox about once a minute while a backlog grows (bench.load), and on a busy host each time
showed as a spike in webhook latency. SQLite keeps no column statistics: nothing to do.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

COLUMNS = {
    "outbox_messages": ("body", "payload", "last_error"),
    "inbound_messages": ("body",),
}


def upgrade() -> None:
    _set_statistics(0)


def downgrade() -> None:
    _set_statistics(-1)  # the server's default_statistics_target again


def _set_statistics(target: int) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in COLUMNS.items():
        for column in columns:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STATISTICS {target}")
