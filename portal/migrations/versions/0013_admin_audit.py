"""admin area: audit entries name their account and refuse UPDATE and DELETE; webhook events
name their Stripe customer; indexes for the accounts list (signup date, invoice number) and the
audit log's keyset pages

Revision ID: 0013_admin_audit
Revises: 0009_usage
Create Date: 2026-11-29 22:40:00+00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013_admin_audit'
down_revision = '0012_credits'
branch_labels = None
depends_on = None

APPEND_ONLY_MESSAGE = 'audit entries are append-only'

SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
        BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END""",
    f"""CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
        BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END""",
]

POSTGRES_TRIGGER = [
    f"""CREATE OR REPLACE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
        END $$""",
    """CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
        FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only()""",
]


def upgrade():
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('account_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_audit_entries_account_id_accounts'),
                                    'accounts', ['account_id'], ['id'])
        batch_op.create_index('ix_audit_entries_account_id_id', ['account_id', 'id'],
                              unique=False)
        batch_op.create_index('ix_audit_entries_action_id', ['action', 'id'], unique=False)
        batch_op.create_index('ix_audit_entries_actor_id_id', ['actor_id', 'id'], unique=False)
    # Plain index creation: accounts is never rebuilt (its foreign keys would refuse it).
    op.create_index('ix_accounts_created_at_id', 'accounts', ['created_at', 'id'], unique=False)
    op.create_index('ix_invoices_number', 'invoices', ['number'], unique=False)
    # Webhook events name the Stripe customer they touched, so an account lists its events.
    op.add_column('webhook_events',
                  sa.Column('stripe_customer_id', sa.String(length=255), nullable=True))
    op.create_index('ix_webhook_events_stripe_customer_id', 'webhook_events',
                    ['stripe_customer_id'], unique=False)
    postgres = op.get_bind().dialect.name == 'postgresql'
    obj = "(payload::json -> 'data' -> 'object')" if postgres else None
    if postgres:
        op.execute(f"""UPDATE webhook_events SET stripe_customer_id = CASE
            WHEN {obj} ->> 'object' = 'customer' THEN {obj} ->> 'id'
            WHEN json_typeof({obj} -> 'customer') = 'string' THEN {obj} ->> 'customer'
            END""")
    else:
        op.execute("""UPDATE webhook_events SET stripe_customer_id = CASE
            WHEN json_extract(payload, '$.data.object.object') = 'customer'
              THEN json_extract(payload, '$.data.object.id')
            WHEN json_type(payload, '$.data.object.customer') = 'text'
              THEN json_extract(payload, '$.data.object.customer')
            END""")
    statements = POSTGRES_TRIGGER if postgres else SQLITE_TRIGGERS
    for statement in statements:
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER IF EXISTS audit_entries_append_only ON audit_entries')
        op.execute('DROP FUNCTION IF EXISTS audit_entries_append_only()')
    else:
        op.execute('DROP TRIGGER IF EXISTS audit_entries_no_update')
        op.execute('DROP TRIGGER IF EXISTS audit_entries_no_delete')
    op.drop_index('ix_webhook_events_stripe_customer_id', table_name='webhook_events')
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_column('stripe_customer_id')
    op.drop_index('ix_invoices_number', table_name='invoices')
    op.drop_index('ix_accounts_created_at_id', table_name='accounts')
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_entries_actor_id_id')
        batch_op.drop_index('ix_audit_entries_action_id')
        batch_op.drop_index('ix_audit_entries_account_id_id')
        batch_op.drop_constraint(batch_op.f('fk_audit_entries_account_id_accounts'),
                                 type_='foreignkey')
        batch_op.drop_column('account_id')
