"""Care relationships expire (EHR_CARE_DAYS after the latest check-in or encounter).

Revision ID: 0008_care_expiry
Revises: 0007_export_subjects
Create Date: 2026-12-03 15:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0008_care_expiry'
down_revision = '0007_export_subjects'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('care_relationships', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', sa.BigInteger(), nullable=True))
    op.execute('UPDATE care_relationships SET expires_at = created_at + 7776000000000')  # 90 days, in µs
    with op.batch_alter_table('care_relationships', schema=None) as batch_op:
        batch_op.alter_column('expires_at', existing_type=sa.BigInteger(), nullable=False)


def downgrade():
    with op.batch_alter_table('care_relationships', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
