"""revenue reports: subscription MRR and its changes, and the indexes the reports read

Revision ID: 0014_revenue
Revises: 0009_usage
Create Date: 2026-11-29 22:45:00+00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014_revenue'
down_revision = '0013_admin_audit'
branch_labels = None
depends_on = None

KINDS = "'new_business', 'expansion', 'contraction', 'churn', 'reactivation'"


def upgrade():
    op.create_table(
        'mrr_changes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=True),
        sa.Column('stripe_customer_id', sa.String(length=255), nullable=False),
        sa.Column('stripe_subscription_id', sa.String(length=255), nullable=False),
        sa.Column('stripe_price_id', sa.String(length=255), nullable=True),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('old_mrr', sa.Integer(), nullable=False),
        sa.Column('new_mrr', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('old_mrr >= 0 AND new_mrr >= 0',
                           name=op.f('ck_mrr_changes_mrr_not_negative')),
        sa.CheckConstraint('old_mrr != new_mrr', name=op.f('ck_mrr_changes_mrr_changed')),
        sa.CheckConstraint(f'kind IN ({KINDS})', name=op.f('ck_mrr_changes_kind_known')),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
                                name=op.f('fk_mrr_changes_account_id_accounts')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_mrr_changes')),
    )
    op.create_index(op.f('ix_mrr_changes_account_id'), 'mrr_changes', ['account_id'])
    op.create_index(op.f('ix_mrr_changes_stripe_subscription_id'), 'mrr_changes',
                    ['stripe_subscription_id'])
    op.create_index('ix_mrr_changes_currency_at', 'mrr_changes',
                    ['currency', 'at', 'kind', 'old_mrr', 'new_mrr'])
    op.create_index('ix_mrr_changes_customer', 'mrr_changes',
                    ['stripe_customer_id', 'currency', 'at'])
    op.create_table(
        'subscription_mrr',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('stripe_subscription_id', sa.String(length=255), nullable=False),
        sa.Column('stripe_customer_id', sa.String(length=255), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=True),
        sa.Column('stripe_price_id', sa.String(length=255), nullable=True),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('mrr', sa.Integer(), nullable=False),
        sa.Column('discount_ids', sa.String(length=1000), nullable=False),
        sa.Column('percent_off_bp', sa.Integer(), nullable=False),
        sa.Column('amount_off', sa.Integer(), nullable=False),
        sa.Column('discount_end', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('mrr >= 0', name=op.f('ck_subscription_mrr_mrr_not_negative')),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
                                name=op.f('fk_subscription_mrr_account_id_accounts')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_subscription_mrr')),
        sa.UniqueConstraint('stripe_subscription_id',
                            name=op.f('uq_subscription_mrr_stripe_subscription_id')),
    )
    op.create_index(op.f('ix_subscription_mrr_account_id'), 'subscription_mrr', ['account_id'])
    op.create_index('ix_subscription_mrr_customer', 'subscription_mrr',
                    ['stripe_customer_id', 'currency', 'mrr'])
    op.create_index('ix_subscription_mrr_plan', 'subscription_mrr',
                    ['currency', 'stripe_price_id', 'mrr', 'stripe_customer_id'])
    op.create_index('ix_charges_revenue', 'charges',
                    ['currency', 'stripe_created', 'status', 'amount_captured'])
    op.create_index('ix_refunds_revenue', 'refunds',
                    ['currency', 'stripe_created', 'status', 'amount'])
    op.create_index('ix_invoices_revenue', 'invoices',
                    ['currency', 'attempt_count', 'paid_at', 'amount_paid'])
    op.create_index('ix_subscriptions_trial', 'subscriptions', ['currency', 'trial_end'])


def downgrade():
    op.drop_index('ix_subscriptions_trial', table_name='subscriptions')
    op.drop_index('ix_invoices_revenue', table_name='invoices')
    op.drop_index('ix_refunds_revenue', table_name='refunds')
    op.drop_index('ix_charges_revenue', table_name='charges')
    op.drop_index('ix_subscription_mrr_plan', table_name='subscription_mrr')
    op.drop_index('ix_subscription_mrr_customer', table_name='subscription_mrr')
    op.drop_index(op.f('ix_subscription_mrr_account_id'), table_name='subscription_mrr')
    op.drop_table('subscription_mrr')
    op.drop_index('ix_mrr_changes_customer', table_name='mrr_changes')
    op.drop_index('ix_mrr_changes_currency_at', table_name='mrr_changes')
    op.drop_index(op.f('ix_mrr_changes_stripe_subscription_id'), table_name='mrr_changes')
    op.drop_index(op.f('ix_mrr_changes_account_id'), table_name='mrr_changes')
    op.drop_table('mrr_changes')
