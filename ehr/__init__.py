"""EHR service: encrypted FHIR R4 store and API. `create_app` only wires; nothing imports this root."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Create and configure the application. Migrations are never run here (`flask db upgrade`)."""
    from ehr.logging import configure_logging, install_request_logging
    from ehr.settings import load_config, load_secrets

    instance_path = os.environ.get("EHR_INSTANCE_PATH") or (test_config or {}).get("EHR_INSTANCE_PATH")
    app = Flask(
        __name__,
        instance_relative_config=True,
        instance_path=str(instance_path) if instance_path else None,
        template_folder=str(ROOT / "templates"),
    )
    # An empty path segment (/fhir//Patient, or an id holding %2F) is a 404 with an OperationOutcome,
    # not Werkzeug's HTML redirect to a URL the client never asked for.
    app.url_map.merge_slashes = False
    config = load_config(os.environ, test_config, Path(app.instance_path))
    app.config.update(config)
    if not app.config.get("TESTING"):
        configure_logging(str(app.config.get("EHR_LOG_LEVEL", "INFO")))
    secrets = load_secrets(app.config, Path(app.instance_path))
    app.config["SECRET_KEY"] = secrets.secret_key
    app.extensions["ehr.secrets"] = secrets

    register_extensions(app)
    register_store(app)
    register_blueprints(app)
    register_headers(app)
    install_request_logging(app)
    register_web_security(app)
    register_limits(app)
    register_errorhandlers(app)
    register_commands(app)
    return app


def register_extensions(app: Flask) -> None:
    import ehr.store.schema  # noqa: F401  (registers the tables on db.metadata for migrations)
    from ehr.extensions import db, migrate
    from ehr.store.engine import engine_options, normalize_url, private_sqlite_file, sqlite_file

    url = normalize_url(app.config["SQLALCHEMY_DATABASE_URI"])
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", engine_options(url))
    database_file = sqlite_file(url)
    if database_file is not None:
        private_sqlite_file(database_file)  # mode 0600 (and its -wal / -shm), before the first connection
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), compare_type=True)


def audit_relay_path(app: Flask) -> Path | None:
    """Where the job runner's audit relay listens (EHR_AUDIT_RELAY: a socket path, or `off`)."""
    setting = str(app.config.get("EHR_AUDIT_RELAY") or "")
    if setting.lower() == "off":
        return None
    return Path(setting) if setting else Path(app.instance_path) / "audit-relay.sock"


def register_store(app: Flask) -> None:
    from ehr.crypto.blind import BlindIndex
    from ehr.extensions import db
    from ehr.identity.systems import IdentifierSystems
    from ehr.store import engine as engine_setup
    from ehr.store.runtime import Store

    secrets = app.extensions["ehr.secrets"]
    with app.app_context():
        engine = db.engine
    engine_setup.configure(engine)
    base = app.config.get("EHR_BASE_URL") or ""
    from ehr.services.export import ExportSettings

    app.extensions["ehr.export"] = ExportSettings(
        directory=Path(app.config.get("EHR_EXPORT_DIR") or Path(app.instance_path) / "exports"),
        ttl_seconds=int(app.config.get("EHR_EXPORT_TTL_SECONDS") or 24 * 3600),
        lease_seconds=int(app.config.get("EHR_JOB_LEASE_SECONDS") or 30),
        batch=int(app.config.get("EHR_EXPORT_BATCH") or 1000),
    )
    app.extensions["ehr.store"] = Store(
        engine=engine,
        master=secrets.master,
        blind=BlindIndex(secrets.blind_index_key),
        cursor_secret=secrets.secret_key,
        referential_integrity=bool(app.config["EHR_REFERENTIAL_INTEGRITY"]),
        retention_years=int(app.config["EHR_RETENTION_YEARS"]),
        care_days=int(app.config["EHR_CARE_DAYS"]),
        base_urls=(base,) if base else (),
        systems=IdentifierSystems(app.config["EHR_IDENTIFIER_BASE"]),
        audit_key=secrets.audit_key,
        audit_relay=audit_relay_path(app),
    )
    from ehr.crypto.signing_keys import FacilityKeys

    # Facility signing keys live in files, never in the database; development makes them on use.
    app.extensions["ehr.signing"] = FacilityKeys(
        directory=Path(app.config.get("EHR_SIGNING_KEY_DIR") or Path(app.instance_path) / "signing-keys"),
        create_missing=app.config["EHR_ENV"] != "production",
    )


def register_blueprints(app: Flask) -> None:
    from ehr.api.audit import bp as audit_bp
    from ehr.api.bulk import bp as bulk_bp
    from ehr.api.operations import bp as operations_bp
    from ehr.api.routes import bp as fhir_bp
    from ehr.auth import bp as auth_bp
    from ehr.clinic import bp as clinic_bp
    from ehr.healthbook import bp as healthbook_bp
    from ehr.web import bp as web_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(audit_bp)
    app.register_blueprint(bulk_bp)
    app.register_blueprint(operations_bp)
    app.register_blueprint(fhir_bp)
    app.register_blueprint(web_bp)
    app.register_blueprint(clinic_bp)
    app.register_blueprint(healthbook_bp)


def register_headers(app: Flask) -> None:
    """Security headers (CSP, nosniff, no-store, HSTS in production) on every response; its
    after-request hook is registered first among the app's, so it runs last."""
    from ehr.web import headers

    headers.install(app)


def register_web_security(app: Flask) -> None:
    """Languages (Flask-Babel), server-side sessions, CSRF protection, the identity provider."""
    from ehr import auth, i18n

    i18n.init_app(app)
    auth.install(app)


def register_limits(app: Flask) -> None:
    """Per-request cost bounds, the statement timeout and the rate limits (ehr.api.limits)."""
    from ehr.api import limits

    limits.install(app)


def register_errorhandlers(app: Flask) -> None:
    from ehr.api import access, errors

    errors.register(app)
    access.install(app)


def register_commands(app: Flask) -> None:
    from ehr.cli import ehr_group

    app.cli.add_command(ehr_group)
