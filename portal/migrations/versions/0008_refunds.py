"""refund requests: the portal's own record of each refund, created before Stripe is called

Revision ID: 0008_refunds
Revises: 0007_invoices
Create Date: 2026-11-29 21:05:00+00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008_refunds'
down_revision = '0007_invoices'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'refund_requests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('charge_id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=True),
        sa.Column('amount', sa.Integer(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('form_token', sa.String(length=64), nullable=False),
        sa.Column('requested_by_id', sa.Integer(), nullable=False),
        sa.Column('approved_by_id', sa.Integer(), nullable=True),
        sa.Column('retry_of_id', sa.Integer(), nullable=True),
        sa.Column('stripe_refund_id', sa.String(length=255), nullable=True),
        sa.Column('stripe_request_id', sa.String(length=255), nullable=True),
        sa.Column('failure_message', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('amount > 0', name=op.f('ck_refund_requests_amount_positive')),
        sa.CheckConstraint(
            "reason IN ('duplicate', 'fraudulent', 'requested_by_customer')",
            name=op.f('ck_refund_requests_reason_known')),
        sa.CheckConstraint(
            "status IN ('awaiting_approval', 'sending', 'pending', 'succeeded', 'failed', "
            "'canceled')", name=op.f('ck_refund_requests_status_known')),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
                                name=op.f('fk_refund_requests_account_id_accounts')),
        sa.ForeignKeyConstraint(['approved_by_id'], ['users.id'],
                                name=op.f('fk_refund_requests_approved_by_id_users')),
        sa.ForeignKeyConstraint(['charge_id'], ['charges.id'],
                                name=op.f('fk_refund_requests_charge_id_charges')),
        sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'],
                                name=op.f('fk_refund_requests_requested_by_id_users')),
        sa.ForeignKeyConstraint(['retry_of_id'], ['refund_requests.id'],
                                name=op.f('fk_refund_requests_retry_of_id_refund_requests')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_refund_requests')),
        sa.UniqueConstraint('form_token', name=op.f('uq_refund_requests_form_token')),
        sa.UniqueConstraint('stripe_refund_id', name=op.f('uq_refund_requests_stripe_refund_id')),
    )
    with op.batch_alter_table('refund_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refund_requests_account_id'), ['account_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_refund_requests_charge_id'), ['charge_id'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('refund_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refund_requests_charge_id'))
        batch_op.drop_index(batch_op.f('ix_refund_requests_account_id'))
    op.drop_table('refund_requests')
