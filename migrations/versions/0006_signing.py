"""Signed resources: the Provenance whose signature covers a resource's current version.

Revision ID: 0006_signing
Revises: 0005_access
Create Date: 2026-11-24 08:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0006_signing'
down_revision = '0005_access'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('resources', schema=None) as batch_op:
        batch_op.add_column(sa.Column('signed_by', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('resources', schema=None) as batch_op:
        batch_op.drop_column('signed_by')
