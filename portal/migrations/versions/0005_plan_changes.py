"""Mirror the Stripe customer's balance (credit applied to the next invoices) on accounts.

Revision ID: 0005_plan_changes
Revises: 0004_security
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0005_plan_changes"
down_revision = "0004_security"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.add_column(sa.Column("balance", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("balance_currency", sa.String(length=3), nullable=True))


def downgrade():
    # Plain ALTER TABLE (SQLite 3.35+ and PostgreSQL): a batch copy of accounts would drop the
    # table, which SQLite's enforced foreign keys from users and subscriptions refuse.
    op.execute("ALTER TABLE accounts DROP COLUMN balance_currency")
    op.execute("ALTER TABLE accounts DROP COLUMN balance")
