"""Fixtures: one app per test session on the database under test, tables emptied after each test.

The database is a temporary SQLite file, or the PostgreSQL database named by
EHR_TEST_DATABASE_URL (created fresh by .ci/run). Keys are generated per session (not development
keys), written the way operators write them.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path
from typing import Any, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from ehr import create_app
from ehr.crypto.keyring import new_keyring, write_keyfile
from ehr.store import guards
from ehr.store.runtime import Store
from ehr.store.schema import ALL_TABLES

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def test_database_url(instance: Path) -> str:
    return os.environ.get("EHR_TEST_DATABASE_URL") or f"sqlite:///{instance / 'test.sqlite3'}"


def make_config(instance: Path, **overrides: Any) -> dict[str, Any]:
    key_file = instance / "master.key"
    if not key_file.exists():
        write_keyfile(key_file, new_keyring(development=False))
    config: dict[str, Any] = {
        "TESTING": True,
        "EHR_INSTANCE_PATH": str(instance),
        "EHR_DATABASE_URL": test_database_url(instance),
        "EHR_MASTER_KEY_FILE": str(key_file),
        "EHR_BLIND_INDEX_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "EHR_SECRET_KEY": secrets.token_urlsafe(48),
        "EHR_AUDIT_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "EHR_API_AUTH": "open",  # access control has its own tests, with authentication required
        # In-process apps commit their own audit records: a gunicorn started by another test on the
        # same instance folder must not become their audit writer. The relay has its own tests
        # (tests/store/test_audit_relay.py, tests/e2e/test_audit_crash.py) that turn it on.
        "EHR_AUDIT_RELAY": "off",
        # Rate limits are per process in memory here and would throttle the suite's request loops;
        # tests/api/test_limits.py turns them on (and shares them through Redis across workers).
        "EHR_RATELIMIT_ENABLED": "false",
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="session")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("instance")


@pytest.fixture(scope="session")
def app_config(instance: Path) -> dict[str, Any]:
    return make_config(instance)


@pytest.fixture(scope="session")
def app(app_config: dict[str, Any]) -> Iterator[Flask]:
    import flask_migrate

    application = create_app(app_config)
    with application.app_context():
        flask_migrate.upgrade()
    yield application
    application.extensions["ehr.store"].engine.dispose()


@pytest.fixture(autouse=True)
def _empty_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "app" in request.fixturenames:
        empty_tables(request.getfixturevalue("app"))


def empty_tables(app: Flask) -> None:
    engine = app.extensions["ehr.store"].engine
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # TRUNCATE does not fire the row triggers that keep audit rows append-only.
            conn.execute(text("TRUNCATE " + ", ".join(t.name for t in ALL_TABLES) + " RESTART IDENTITY CASCADE"))
        else:
            for statement in guards.statements("sqlite", create=False):
                conn.execute(text(statement))
            for table in ALL_TABLES:
                conn.execute(table.delete())
            for statement in guards.statements("sqlite", create=True):
                conn.execute(text(statement))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def store(app: Flask) -> Store:
    return app.extensions["ehr.store"]  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def secured(app: Flask, app_config: dict[str, Any]) -> Flask:
    """The same database and keys, with authentication required (the production setting)."""
    return create_app({**app_config, "EHR_API_AUTH": "required"})


@pytest.fixture
def clock(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A movable clock for the web sessions (tests advance it instead of sleeping)."""
    from auth.auth_helpers import Clock

    fake = Clock()
    monkeypatch.setitem(app.config, "EHR_CLOCK", fake)
    return fake


@pytest.fixture
def browser(app: Flask) -> Any:
    """The Flask test client over HTTPS (`__Host-` cookies are Secure), with form helpers."""
    from auth.auth_helpers import Browser

    return Browser(app.test_client())
