"""mirror fetch marks: which rows hold a copy fetched from Stripe, and when it was asked for

Revision ID: 0017_mirror_fetches
Revises: 0016_tombstones
Create Date: 2026-11-30 02:10:00+00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017_mirror_fetches'
down_revision = '0016_tombstones'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'mirror_fetches',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('stripe_id', sa.String(length=255), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('asked_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_mirror_fetches')),
        sa.UniqueConstraint('stripe_id', name=op.f('uq_mirror_fetches_stripe_id')),
    )


def downgrade():
    op.drop_table('mirror_fetches')
