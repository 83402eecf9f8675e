"""billing the usage: mirrored subscription items and the usage reported to Stripe meters

Revision ID: 0010_usage_billing
Revises: 0009_usage
Create Date: 2026-11-29 22:50:00+00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010_usage_billing'
down_revision = '0009_usage'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'subscription_items',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('subscription_id', sa.Integer(), nullable=False),
        sa.Column('stripe_item_id', sa.String(length=255), nullable=False),
        sa.Column('stripe_price_id', sa.String(length=255), nullable=True),
        sa.Column('usage_type', sa.String(length=10), nullable=False),
        sa.Column('meter_key', sa.String(length=64), nullable=True),
        sa.Column('quantity', sa.Integer(), nullable=True),
        sa.CheckConstraint("usage_type IN ('licensed', 'metered')",
                           name=op.f('ck_subscription_items_usage_type_known')),
        sa.ForeignKeyConstraint(['subscription_id'], ['subscriptions.id'], ondelete='CASCADE',
                                name=op.f('fk_subscription_items_subscription_id_subscriptions')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_subscription_items')),
        sa.UniqueConstraint('stripe_item_id', name=op.f('uq_subscription_items_stripe_item_id')),
    )
    op.create_index(op.f('ix_subscription_items_subscription_id'), 'subscription_items',
                    ['subscription_id'], unique=False)
    op.create_table(
        'usage_reports',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('meter', sa.String(length=64), nullable=False),
        sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sequence', sa.Integer(), nullable=False),
        sa.Column('identifier', sa.String(length=100), nullable=False),
        sa.Column('stripe_customer_id', sa.String(length=255), nullable=False),
        sa.Column('value', sa.BigInteger(), nullable=False),
        sa.Column('window_value', sa.BigInteger(), nullable=False),
        sa.Column('event_timestamp', sa.DateTime(timezone=True), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.String(length=500), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('reported_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'reported')",
                           name=op.f('ck_usage_reports_status_known')),
        sa.CheckConstraint('sequence >= 0', name=op.f('ck_usage_reports_sequence_not_negative')),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
                                name=op.f('fk_usage_reports_account_id_accounts')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_reports')),
        sa.UniqueConstraint('identifier', name=op.f('uq_usage_reports_identifier')),
        sa.UniqueConstraint('account_id', 'meter', 'window_start', 'sequence',
                            name='uq_usage_reports_window_sequence'),
    )
    op.create_index(op.f('ix_usage_reports_account_id'), 'usage_reports', ['account_id'],
                    unique=False)


def downgrade():
    op.drop_index(op.f('ix_usage_reports_account_id'), table_name='usage_reports')
    op.drop_table('usage_reports')
    op.drop_index(op.f('ix_subscription_items_subscription_id'), table_name='subscription_items')
    op.drop_table('subscription_items')
