"""Accounts: forced password change after a temporary password; staff practising licence and
their Practitioner / PractitionerRole.

Revision ID: 0009_accounts
Revises: 0008_care_expiry
Create Date: 2026-12-10 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0009_accounts'
down_revision = '0008_care_expiry'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('must_change_password', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('licence_number', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('practitioner_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('practitioner_role_id', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('practitioner_role_id')
        batch_op.drop_column('practitioner_id')
        batch_op.drop_column('licence_number')
        batch_op.drop_column('must_change_password')
