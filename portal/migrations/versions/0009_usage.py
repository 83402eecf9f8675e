"""usage metering: account API keys, raw usage events and hourly aggregates

Revision ID: 0009_usage
Revises: 0008_refunds
Create Date: 2026-11-29 20:45:00+00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009_usage'
down_revision = '0008_refunds'
branch_labels = None
depends_on = None

EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table(
        'api_keys',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('prefix', sa.String(length=32), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint('length(name) > 0', name=op.f('ck_api_keys_name_not_empty')),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
                                name=op.f('fk_api_keys_account_id_accounts')),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'],
                                name=op.f('fk_api_keys_created_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
        sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash')),
    )
    op.create_index(op.f('ix_api_keys_account_id'), 'api_keys', ['account_id'], unique=False)
    op.create_table(
        'usage_events',
        sa.Column('id', EVENT_ID, autoincrement=True, nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('meter', sa.String(length=64), nullable=False),
        sa.Column('quantity', sa.BigInteger(), nullable=False),
        sa.Column('timestamp', sa.DateTime(timezone=True), nullable=False),
        sa.Column('identifier', sa.String(length=100), nullable=False),
        sa.Column('metadata', sa.JSON(), nullable=False),
        sa.Column('api_key_id', sa.Integer(), nullable=True),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('quantity >= 0', name=op.f('ck_usage_events_quantity_not_negative')),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
                                name=op.f('fk_usage_events_account_id_accounts')),
        sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'],
                                name=op.f('fk_usage_events_api_key_id_api_keys')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_events')),
        sa.UniqueConstraint('account_id', 'identifier',
                            name='uq_usage_events_account_identifier'),
    )
    op.create_index('ix_usage_events_account_meter_timestamp', 'usage_events',
                    ['account_id', 'meter', 'timestamp'], unique=False)
    op.create_table(
        'usage_hourly',
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('meter', sa.String(length=64), nullable=False),
        sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
        sa.Column('quantity', sa.BigInteger(), nullable=False),
        sa.Column('event_count', sa.BigInteger(), nullable=False),
        sa.Column('last_quantity', sa.BigInteger(), nullable=False),
        sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
                                name=op.f('fk_usage_hourly_account_id_accounts')),
        sa.PrimaryKeyConstraint('account_id', 'meter', 'hour', name=op.f('pk_usage_hourly')),
    )


def downgrade():
    op.drop_table('usage_hourly')
    op.drop_index('ix_usage_events_account_meter_timestamp', table_name='usage_events')
    op.drop_table('usage_events')
    op.drop_index(op.f('ix_api_keys_account_id'), table_name='api_keys')
    op.drop_table('api_keys')
