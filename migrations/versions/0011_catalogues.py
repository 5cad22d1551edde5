"""Catalogues: versioned drug, service and lab-test lists (public reference data, plaintext).

Revision ID: 0011_catalogues
Revises: 0010_form_drafts
Create Date: 2026-12-05 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0011_catalogues'
down_revision = '0010_form_drafts'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('catalogue_versions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('label', sa.String(length=64), nullable=False),
    sa.Column('imported_at', sa.BigInteger(), nullable=False),
    sa.Column('source', sa.String(length=255), nullable=False),
    sa.Column('row_count', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('kind', 'sha256', name='uq_catalogue_versions_kind_sha256'),
    sa.UniqueConstraint('kind', 'label', name='uq_catalogue_versions_kind_label'),
    )
    with op.batch_alter_table('catalogue_versions', schema=None) as batch_op:
        batch_op.create_index('ix_catalogue_versions_kind_active', ['kind', 'active'], unique=False)

    op.create_table('catalogue_rows',
    sa.Column('version_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['catalogue_versions.id'], ),
    sa.PrimaryKeyConstraint('version_id', 'code'),
    )


def downgrade():
    op.drop_table('catalogue_rows')
    with op.batch_alter_table('catalogue_versions', schema=None) as batch_op:
        batch_op.drop_index('ix_catalogue_versions_kind_active')
    op.drop_table('catalogue_versions')
