"""prepaid credits: per-account credit balances (with the hard-limit setting) and the ledger

Revision ID: 0012_credits
Revises: 0009_usage
Create Date: 2026-11-29 22:45:00+00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012_credits'
down_revision = '0011_usage_notices'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'credit_balances',
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('balance', sa.BigInteger(), nullable=False),
        sa.Column('hard_limit', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('balance >= 0', name=op.f('ck_credit_balances_balance_not_negative')),
        sa.CheckConstraint('currency = lower(currency)',
                           name=op.f('ck_credit_balances_currency_lowercase')),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
                                name=op.f('fk_credit_balances_account_id_accounts')),
        sa.PrimaryKeyConstraint('account_id', name=op.f('pk_credit_balances')),
    )
    op.create_table(
        'credit_ledger_entries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('balance_after', sa.BigInteger(), nullable=False),
        sa.Column('reference', sa.String(length=200), nullable=False),
        sa.Column('description', sa.String(length=300), nullable=False),
        sa.Column('stripe_credit_grant_id', sa.String(length=255), nullable=True),
        sa.Column('stripe_checkout_session_id', sa.String(length=255), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('amount != 0', name=op.f('ck_credit_ledger_entries_amount_not_zero')),
        sa.CheckConstraint('balance_after >= 0',
                           name=op.f('ck_credit_ledger_entries_balance_after_not_negative')),
        sa.CheckConstraint("kind IN ('grant', 'draw_down', 'expiry', 'void', 'reinstated')",
                           name=op.f('ck_credit_ledger_entries_kind_known')),
        sa.CheckConstraint("kind NOT IN ('grant', 'reinstated') OR amount > 0",
                           name=op.f('ck_credit_ledger_entries_credits_add')),
        sa.CheckConstraint("kind IN ('grant', 'reinstated') OR amount < 0",
                           name=op.f('ck_credit_ledger_entries_debits_take')),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
                                name=op.f('fk_credit_ledger_entries_account_id_accounts')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_ledger_entries')),
        sa.UniqueConstraint('account_id', 'reference', name='uq_credit_ledger_account_reference'),
        sa.UniqueConstraint('stripe_checkout_session_id',
                            name=op.f('uq_credit_ledger_entries_stripe_checkout_session_id')),
    )
    op.create_index('ix_credit_ledger_account_id_id', 'credit_ledger_entries',
                    ['account_id', 'id'], unique=False)


def downgrade():
    op.drop_index('ix_credit_ledger_account_id_id', table_name='credit_ledger_entries')
    op.drop_table('credit_ledger_entries')
    op.drop_table('credit_balances')
