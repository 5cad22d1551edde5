"""Export subjects: which patients each Bulk Data export job's files hold.

Revision ID: 0007_export_subjects
Revises: 0006_signing
Create Date: 2026-12-02 20:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0007_export_subjects'
down_revision = '0006_signing'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'export_subjects',
        sa.Column('job_id', sa.String(length=36), nullable=False),
        sa.Column('compartment', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('job_id', 'compartment'),
    )
    with op.batch_alter_table('export_subjects', schema=None) as batch_op:
        batch_op.create_index('ix_export_subjects_compartment', ['compartment'], unique=False)


def downgrade():
    with op.batch_alter_table('export_subjects', schema=None) as batch_op:
        batch_op.drop_index('ix_export_subjects_compartment')
    op.drop_table('export_subjects')
