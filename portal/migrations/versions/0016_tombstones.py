"""mirror tombstones for deleted Stripe objects; webhook events know their object

Revision ID: 0016_tombstones
Revises: 0009_usage
Create Date: 2026-11-29 22:45:00+00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0016_tombstones'
down_revision = '0014_revenue'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'mirror_tombstones',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('stripe_id', sa.String(length=255), nullable=False),
        sa.Column('object_type', sa.String(length=64), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_mirror_tombstones')),
        sa.UniqueConstraint('stripe_id', name=op.f('uq_mirror_tombstones_stripe_id')),
    )
    op.add_column('webhook_events', sa.Column('object_id', sa.String(length=255), nullable=True))
    op.create_index(op.f('ix_webhook_events_object_id'), 'webhook_events', ['object_id'],
                    unique=False)


def downgrade():
    op.drop_index(op.f('ix_webhook_events_object_id'), table_name='webhook_events')
    op.drop_column('webhook_events', 'object_id')
    op.drop_table('mirror_tombstones')
