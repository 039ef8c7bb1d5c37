"""inbox index, alert escalation index, and the center's on-call contact

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

OPEN_NOT_ESCALATED = 'acknowledged_at IS NULL AND escalated_at IS NULL'
CHANNELS = ('telegram', 'sms', 'web', 'console')


def upgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index(
            'ix_alerts_escalation_due', ['severity', 'due_by'], unique=False,
            sqlite_where=sa.text(OPEN_NOT_ESCALATED), postgresql_where=sa.text(OPEN_NOT_ESCALATED),
        )

    with op.batch_alter_table('centers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('on_call_channel', sa.Enum(*CHANNELS, name='channel', native_enum=False, create_constraint=True, length=32), nullable=True))
        batch_op.add_column(sa.Column('on_call_address', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('on_call_language', sa.String(length=8), nullable=False, server_default='en'))

    # The composite index serves center_id alone too, so the single-column one goes.
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_submissions_center_id'))
        batch_op.create_index('ix_submissions_center_authored', ['center_id', 'authored_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_index('ix_submissions_center_authored')
        batch_op.create_index(batch_op.f('ix_submissions_center_id'), ['center_id'], unique=False)

    with op.batch_alter_table('centers', schema=None) as batch_op:
        batch_op.drop_column('on_call_language')
        batch_op.drop_column('on_call_address')
        batch_op.drop_column('on_call_channel')

    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_escalation_due')
