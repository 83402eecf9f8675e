"""usage threshold notices: one row per meter, period and threshold announced

Revision ID: 0011_usage_notices
Revises: 0009_usage
Create Date: 2026-11-29 22:40:00+00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011_usage_notices'
down_revision = '0010_usage_billing'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'usage_notices',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('meter', sa.String(length=64), nullable=False),
        sa.Column('period_start', sa.DateTime(timezone=True), nullable=False),
        sa.Column('period_end', sa.DateTime(timezone=True), nullable=False),
        sa.Column('threshold', sa.Integer(), nullable=False),
        sa.Column('used', sa.BigInteger(), nullable=False),
        sa.Column('included', sa.BigInteger(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('threshold IN (80, 100)',
                           name=op.f('ck_usage_notices_threshold_known')),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
                                name=op.f('fk_usage_notices_account_id_accounts')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_notices')),
        sa.UniqueConstraint('account_id', 'meter', 'period_start', 'threshold',
                            name='uq_usage_notices_once_per_period'),
    )


def downgrade():
    op.drop_table('usage_notices')
