"""Configuration from `EHR_*` environment variables, validated at start-up.

Secrets are separated by purpose (session secret, master key, blind-index key). Each can be given
inline (`EHR_X`) or as a file (`EHR_X_FILE`). In production the app refuses to start with a missing
secret, a development key, or two purposes sharing one key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ehr.crypto.keyring import KeyConfigError, LocalMasterKeyProvider, MasterKeyProvider, decode_key
from ehr.identity.systems import DEFAULT_BASE as DEFAULT_IDENTIFIER_BASE

DEV_MARKER = "# ehr development key - not for production"
DEFAULT_MAX_BODY = 32 * 1024 * 1024  # Synthea transaction bundles reach ~3 MB; 32 MiB leaves room


class ConfigError(RuntimeError):
    """The configuration is unusable; the message says which setting and why, never a value."""


@dataclass(frozen=True)
class Secrets:
    master: MasterKeyProvider
    blind_index_key: bytes
    secret_key: bytes
    audit_key: bytes
    development: bool  # True when any of them is a development key


def _shifted_clock(start: str) -> Any:
    from datetime import datetime

    from ehr.store.keys import now_us

    try:
        moment = datetime.fromisoformat(start.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError("EHR_CLOCK_START must be an ISO 8601 instant with its offset") from None
    if moment.tzinfo is None:
        raise ConfigError("EHR_CLOCK_START must be an ISO 8601 instant with its offset")
    offset = int(moment.timestamp() * 1_000_000) - now_us()
    return lambda: now_us() + offset


def _env_bool(value: Any, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _read_secret_file(path: Path, what: str) -> tuple[str, bool]:
    try:
        lines = path.read_text("utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError(f"{what} file {path} does not exist") from None
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise ConfigError(f"{what} file {path} must not be readable by group or others (chmod 600)")
    development = any(line.strip() == DEV_MARKER for line in lines)
    values = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if len(values) != 1:
        raise ConfigError(f"{what} file {path} must hold exactly one key line")
    return values[0], development


def write_secret_file(path: Path, value: str, development: bool) -> None:
    """Create a secret file with mode 0600 from the first byte written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        if development:
            fh.write(DEV_MARKER + "\n")
        fh.write(value + "\n")


def _secret(config: Mapping[str, Any], name: str, default_file: Path | None) -> tuple[str | None, bool]:
    inline = config.get(name)
    if inline:
        return str(inline), False
    file_name = config.get(f"{name}_FILE")
    if file_name:
        return _read_secret_file(Path(file_name), name)
    if default_file is not None and default_file.exists():
        return _read_secret_file(default_file, name)
    return None, False


def load_secrets(config: Mapping[str, Any], instance_path: Path) -> Secrets:
    """Build the secrets from config; raise ConfigError with a precise, value-free message."""
    production = config.get("EHR_ENV", "development") == "production"
    dev_default = None if production else instance_path

    try:
        if config.get("EHR_MASTER_KEY"):
            master = LocalMasterKeyProvider.from_env_values(
                str(config["EHR_MASTER_KEY"]), str(config.get("EHR_MASTER_KEY_PREVIOUS") or "")
            )
        else:
            key_file = config.get("EHR_MASTER_KEY_FILE") or (dev_default / "master.key" if dev_default else None)
            if key_file is None or not Path(key_file).exists():
                raise ConfigError(
                    "no master key: set EHR_MASTER_KEY (base64 of 32 bytes) or EHR_MASTER_KEY_FILE"
                    + ("" if production else " (or run `flask --app wsgi ehr keys init-dev`)")
                )
            master = LocalMasterKeyProvider.from_file(Path(key_file))
        master_dev = bool(getattr(master, "development", False))

        blind_text, blind_dev = _secret(config, "EHR_BLIND_INDEX_KEY", dev_default / "blind-index.key" if dev_default else None)
        if blind_text is None:
            raise ConfigError("no blind-index key: set EHR_BLIND_INDEX_KEY (base64 of 32 bytes) or EHR_BLIND_INDEX_KEY_FILE")
        blind_key = decode_key(blind_text, "EHR_BLIND_INDEX_KEY")
    except KeyConfigError as exc:
        raise ConfigError(str(exc)) from None

    audit_text, audit_dev = _secret(config, "EHR_AUDIT_KEY", dev_default / "audit.key" if dev_default else None)
    if audit_text is None:
        raise ConfigError("no audit-chain key: set EHR_AUDIT_KEY (base64 of 32 bytes) or EHR_AUDIT_KEY_FILE")
    try:
        audit_key = decode_key(audit_text, "EHR_AUDIT_KEY")
    except KeyConfigError as exc:
        raise ConfigError(str(exc)) from None

    secret_text, secret_dev = _secret(config, "EHR_SECRET_KEY", dev_default / "secret.key" if dev_default else None)
    if secret_text is None:
        raise ConfigError("no session secret: set EHR_SECRET_KEY (32 or more random bytes) or EHR_SECRET_KEY_FILE")
    secret_key = secret_text.encode("utf-8")
    if len(secret_key) < 32:
        raise ConfigError("EHR_SECRET_KEY is too short: use at least 32 random characters")

    master_keys = getattr(master, "key_bytes", lambda: [])()
    fingerprints = [hashlib.sha256(k).digest() for k in master_keys]
    if hashlib.sha256(blind_key).digest() in fingerprints:
        raise ConfigError("EHR_BLIND_INDEX_KEY must differ from the master key (one key per purpose)")
    if audit_key == blind_key or hashlib.sha256(audit_key).digest() in fingerprints:
        raise ConfigError("EHR_AUDIT_KEY must differ from the master and blind-index keys (one key per purpose)")
    try:
        secret_raw = base64.b64decode(secret_text, validate=True)
    except (binascii.Error, ValueError):
        secret_raw = b""
    for candidate in (secret_key, secret_raw):
        if candidate and (candidate in (blind_key, audit_key) or hashlib.sha256(candidate).digest() in fingerprints):
            raise ConfigError("EHR_SECRET_KEY must differ from the master and blind-index keys (one key per purpose)")

    development = master_dev or blind_dev or secret_dev or audit_dev
    if production and development:
        raise ConfigError("EHR_ENV=production refuses development keys: generate production keys (see README)")
    return Secrets(master=master, blind_index_key=blind_key, secret_key=secret_key, audit_key=audit_key, development=development)


def load_config(environ: Mapping[str, str], test_config: Mapping[str, Any] | None, instance_path: Path) -> dict[str, Any]:
    """Assemble the Flask config mapping from the environment and an optional test mapping."""
    config: dict[str, Any] = {k: v for k, v in environ.items() if k.startswith("EHR_")}
    if test_config:
        config.update(test_config)
    env = config.get("EHR_ENV", "development")
    if env not in ("development", "production"):
        raise ConfigError("EHR_ENV must be 'development' or 'production'")
    config["EHR_ENV"] = env
    start = config.pop("EHR_CLOCK_START", None)
    if start:
        # A clock that starts at the given instant and runs on, so a whole clinic day can be run
        # through gunicorn at 23:30 or 00:30 UTC (the browser tests); never in production.
        if env == "production":
            raise ConfigError("EHR_CLOCK_START is for development and tests only")
        config["EHR_CLOCK"] = _shifted_clock(str(start))
    config.setdefault("EHR_DATABASE_URL", f"sqlite:///{instance_path / 'ehr.sqlite3'}")
    config["SQLALCHEMY_DATABASE_URI"] = config["EHR_DATABASE_URL"]
    try:
        config["MAX_CONTENT_LENGTH"] = int(config.get("EHR_MAX_BODY_BYTES") or DEFAULT_MAX_BODY)
        config["EHR_RETENTION_YEARS"] = int(config.get("EHR_RETENTION_YEARS") or 10)
        config["EHR_CARE_DAYS"] = int(config.get("EHR_CARE_DAYS") or 90)
    except ValueError:
        raise ConfigError("EHR_MAX_BODY_BYTES, EHR_RETENTION_YEARS and EHR_CARE_DAYS must be integers") from None
    config["EHR_REFERENTIAL_INTEGRITY"] = _env_bool(config.get("EHR_REFERENTIAL_INTEGRITY"), True)
    config.setdefault("EHR_BASE_URL", "")
    config["EHR_IDENTIFIER_BASE"] = config.get("EHR_IDENTIFIER_BASE") or DEFAULT_IDENTIFIER_BASE
    auth = config.get("EHR_API_AUTH") or ("required" if env == "production" else "open")
    if auth not in ("required", "open"):
        raise ConfigError("EHR_API_AUTH must be 'required' or 'open'")
    if auth == "open" and env == "production":
        raise ConfigError("EHR_API_AUTH=open (no authentication) is refused in production")
    config["EHR_API_AUTH"] = auth
    _web_login_config(config, env)
    return config


# Web logins (ehr.auth): integer settings and their defaults.
WEB_LOGIN_DEFAULTS = {
    "EHR_STAFF_IDLE_MINUTES": 15,  # a staff session ends after this long without a request
    "EHR_PATIENT_IDLE_MINUTES": 30,  # the same for patients (and for not yet signed-in visitors)
    "EHR_SESSION_MAX_HOURS": 12,  # every session ends this long after sign-in, active or not
    "EHR_LOGIN_MAX_FAILURES": 20,  # failed guesses evaluated per (source, login name) pair per window
    "EHR_LOGIN_SOURCE_MAX_FAILURES": 30,  # per source address across names
    "EHR_LOGIN_ACCOUNT_MAX_FAILURES": 200,  # per login name from every source (above what one source can add)
    "EHR_LOGIN_WINDOW_MINUTES": 60,
    "EHR_LOGIN_BACKOFF_AFTER": 5,  # after this many failures, wait 2^(n - this) seconds between guesses
    "EHR_ACTIVATION_DAYS": 7,  # lifetime of a one-time activation code
    "EHR_FORM_DRAFT_HOURS": 24,  # what a form held when its session ended is kept this long for restoring
}


def _web_login_config(config: dict[str, Any], env: str) -> None:
    for name, default in WEB_LOGIN_DEFAULTS.items():
        try:
            value = int(config.get(name) or default)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a whole number") from None
        if value < 1:
            raise ConfigError(f"{name} must be at least 1")
        config[name] = value
    # Session cookies are `__Host-` + Secure by default. Plain-HTTP development from another host
    # may turn that off (the cookie is then named `ehr_session`); production refuses it.
    config["EHR_SESSION_COOKIE_SECURE"] = _env_bool(config.get("EHR_SESSION_COOKIE_SECURE"), True)
    if env == "production" and not config["EHR_SESSION_COOKIE_SECURE"]:
        raise ConfigError("EHR_SESSION_COOKIE_SECURE=false is refused in production (session cookies travel over HTTPS only)")
    config["EHR_TOTP_ISSUER"] = config.get("EHR_TOTP_ISSUER") or "EHR VN"
    # External identity provider for patients (OpenID Connect); the login button shows when set.
    issuer = str(config.get("EHR_OIDC_ISSUER") or "").rstrip("/")
    config["EHR_OIDC_ISSUER"] = issuer
    config["EHR_OIDC_NATIONAL_ID_CLAIM"] = config.get("EHR_OIDC_NATIONAL_ID_CLAIM") or "national_id"
    config.setdefault("EHR_OIDC_REDIRECT_URI", "")
    secret, _dev = _secret(config, "EHR_OIDC_CLIENT_SECRET", None)
    config["EHR_OIDC_CLIENT_SECRET"] = secret or ""
    if issuer:
        if not config.get("EHR_OIDC_CLIENT_ID"):
            raise ConfigError("EHR_OIDC_ISSUER is set: set EHR_OIDC_CLIENT_ID too")
        if env == "production" and not issuer.startswith("https://"):
            raise ConfigError("EHR_OIDC_ISSUER must be an https:// URL in production")
