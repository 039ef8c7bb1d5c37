"""outbox claim indexes: a channel's pending rows in send order, and open rows by address

The dispatcher's claim (pending rows of its channels, in priority then id order, none with an
earlier open row to the same address) read every pending row of the channel and hash-joined
them to every open one: 60-170 ms with a backlog of 25,000 replies, and up to 33 s when the
planner's statistics lagged behind a fast-growing outbox (bench.load). With these two partial
indexes it walks the first rows in order and probes each address: under a millisecond.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

PENDING = "status = 'pending'"
OPEN = "status IN ('pending', 'sending')"


def upgrade() -> None:
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.create_index(
            'ix_outbox_claim', ['channel', sa.text('priority DESC'), 'id'], unique=False,
            sqlite_where=sa.text(PENDING), postgresql_where=sa.text(PENDING),
        )
        batch_op.create_index(
            'ix_outbox_open_address', ['channel', 'address', 'id'], unique=False,
            sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN),
        )


def downgrade() -> None:
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_open_address')
        batch_op.drop_index('ix_outbox_claim')
