"""community: broadcast recipients, broadcast kind and timestamps, rsvp promotion

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import c3n_bot.store.types

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

OUTCOMES = ('queued', 'deferred', 'stopped', 'no_consent', 'no_channel')


def _when(name: str) -> sa.Column[object]:
    return sa.Column(name, c3n_bot.store.types.UTCDateTime(timezone=True), nullable=True)


def upgrade() -> None:
    op.create_table('broadcast_recipients',
    sa.Column('broadcast_id', sa.Uuid(), nullable=False),
    sa.Column('contact_id', sa.Uuid(), nullable=False),
    sa.Column('outcome', sa.Enum(*OUTCOMES, name='recipient_outcome', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('outbox_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('due_id', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['broadcast_id'], ['broadcasts.id'], name=op.f('fk_broadcast_recipients_broadcast_id_broadcasts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_broadcast_recipients_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['due_id'], ['due_work.id'], name=op.f('fk_broadcast_recipients_due_id_due_work')),
    sa.ForeignKeyConstraint(['outbox_id'], ['outbox_messages.id'], name=op.f('fk_broadcast_recipients_outbox_id_outbox_messages')),
    sa.PrimaryKeyConstraint('broadcast_id', 'contact_id', name=op.f('pk_broadcast_recipients'))
    )
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.add_column(_when('updated_at'))
        batch_op.create_index('ix_activities_starts_at', ['starts_at'], unique=False)

    with op.batch_alter_table('broadcasts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.Enum('message', 'invitation', name='broadcast_kind', native_enum=False, create_constraint=True, length=32), server_default='message', nullable=False))
        for name in ('updated_at', 'started_at', 'finished_at', 'cancelled_at'):
            batch_op.add_column(_when(name))
        batch_op.create_index('ix_broadcasts_status_scheduled', ['status', 'scheduled_at'], unique=False)

    with op.batch_alter_table('rsvps', schema=None) as batch_op:
        batch_op.add_column(_when('promoted_at'))


def downgrade() -> None:
    with op.batch_alter_table('rsvps', schema=None) as batch_op:
        batch_op.drop_column('promoted_at')

    with op.batch_alter_table('broadcasts', schema=None) as batch_op:
        batch_op.drop_index('ix_broadcasts_status_scheduled')
        for name in ('cancelled_at', 'finished_at', 'started_at', 'updated_at', 'kind'):
            batch_op.drop_column(name)

    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.drop_index('ix_activities_starts_at')
        batch_op.drop_column('updated_at')

    op.drop_table('broadcast_recipients')
