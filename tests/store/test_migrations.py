"""Migrations are the only way the schema is made, and they match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ehr.extensions import db


def test_models_and_migrations_agree(app, store):
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata)
    assert diff == []


def test_create_app_does_not_migrate(app_config, tmp_path):
    from sqlalchemy import inspect

    from ehr import create_app

    fresh = create_app({**app_config, "EHR_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}"})
    engine = fresh.extensions["ehr.store"].engine
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
