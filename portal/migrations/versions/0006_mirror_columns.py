"""mirror columns: every mirror row keeps version, synced_at and stripe_created

The customer mirror on accounts is versioned like the others (stripe_customer_version
becomes version, values kept); charges, payment methods and refunds gain synced_at,
filled with the upgrade time for rows that already exist.

Revision ID: 0006_mirror_columns
Revises: 0005_plan_changes
Create Date: 2026-11-29 19:45:00+00:00

"""
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006_mirror_columns'
down_revision = '0005_plan_changes'
branch_labels = None
depends_on = None

TABLES_GAINING_SYNCED_AT = ('charges', 'payment_methods', 'refunds')


def upgrade():
    # Plain ALTERs, not a batch copy: rebuilding accounts would drop a table that users and
    # the mirror reference, which SQLite refuses while it enforces foreign keys.
    op.execute('ALTER TABLE accounts RENAME COLUMN stripe_customer_version TO version')
    if op.get_bind().dialect.name != 'sqlite':
        # SQLite cannot drop a default in place; there it stays 0, the model's default too.
        op.execute('ALTER TABLE accounts ALTER COLUMN version DROP DEFAULT')
    op.add_column('accounts', sa.Column('stripe_created', sa.DateTime(timezone=True),
                                        nullable=True))
    op.add_column('accounts', sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True))

    now = datetime.now(UTC)
    for name in TABLES_GAINING_SYNCED_AT:
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.add_column(sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True))
        table = sa.table(name, sa.column('synced_at', sa.DateTime(timezone=True)))
        # SQLite keeps naive UTC (see models.types.UTCDateTime); PostgreSQL keeps the zone.
        stamp = now.replace(tzinfo=None) if op.get_bind().dialect.name == 'sqlite' else now
        op.execute(table.update().values(synced_at=stamp))
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.alter_column('synced_at', existing_type=sa.DateTime(timezone=True),
                                  nullable=False)


def downgrade():
    for name in reversed(TABLES_GAINING_SYNCED_AT):
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.drop_column('synced_at')

    op.execute('ALTER TABLE accounts DROP COLUMN synced_at')
    op.execute('ALTER TABLE accounts DROP COLUMN stripe_created')
    op.execute('ALTER TABLE accounts RENAME COLUMN version TO stripe_customer_version')
    if op.get_bind().dialect.name != 'sqlite':
        op.execute("ALTER TABLE accounts ALTER COLUMN stripe_customer_version SET DEFAULT '0'")
