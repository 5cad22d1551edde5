"""Form drafts: what a person had typed when their session ended, encrypted, restored after sign-in.

Revision ID: 0010_form_drafts
Revises: 0009_accounts
Create Date: 2026-12-04 19:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0010_form_drafts'
down_revision = '0009_accounts'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('form_drafts',
    sa.Column('account_id', sa.String(length=36), nullable=False),
    sa.Column('path_hash', sa.LargeBinary(length=16), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('blob', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'path_hash'),
    )
    with op.batch_alter_table('form_drafts', schema=None) as batch_op:
        batch_op.create_index('ix_form_drafts_expires', ['expires_at'], unique=False)


def downgrade():
    with op.batch_alter_table('form_drafts', schema=None) as batch_op:
        batch_op.drop_index('ix_form_drafts_expires')
    op.drop_table('form_drafts')
