"""Start-up secret checks: separate secrets per purpose; production refuses development keys."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

import pytest

from ehr.cli.devkeys import ensure_dev_keys
from ehr.crypto.keyring import new_keyring, write_keyfile
from ehr.settings import ConfigError, load_config, load_secrets


def _b64() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _config(tmp_path: Path, **over: str) -> dict:
    key_file = tmp_path / "prod.key"
    if not key_file.exists():
        write_keyfile(key_file, new_keyring(development=False))
    base = {"EHR_ENV": "production", "EHR_MASTER_KEY_FILE": str(key_file), "EHR_BLIND_INDEX_KEY": _b64(),
            "EHR_SECRET_KEY": secrets.token_urlsafe(40), "EHR_AUDIT_KEY": _b64()}
    base.update(over)
    return load_config({}, base, tmp_path)


def test_production_accepts_proper_keys(tmp_path):
    assert load_secrets(_config(tmp_path), tmp_path).development is False


def test_production_refuses_development_keys(tmp_path):
    ensure_dev_keys(tmp_path / "dev")
    with pytest.raises(ConfigError, match="development keys"):
        load_secrets(_config(tmp_path, EHR_MASTER_KEY_FILE=str(tmp_path / "dev" / "master.key")), tmp_path)
    with pytest.raises(ConfigError, match="development keys"):
        load_secrets(_config(tmp_path, EHR_BLIND_INDEX_KEY="", EHR_BLIND_INDEX_KEY_FILE=str(tmp_path / "dev" / "blind-index.key")), tmp_path)


def test_development_uses_instance_dev_keys(tmp_path):
    ensure_dev_keys(tmp_path)
    secrets_ = load_secrets(load_config({}, {}, tmp_path), tmp_path)
    assert secrets_.development is True
    assert oct((tmp_path / "master.key").stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    "override,message",
    [
        ({"EHR_MASTER_KEY_FILE": "/nonexistent/key"}, "no master key"),
        ({"EHR_BLIND_INDEX_KEY": ""}, "no blind-index key"),
        ({"EHR_BLIND_INDEX_KEY": "not base64!"}, "not valid base64"),
        ({"EHR_BLIND_INDEX_KEY": base64.b64encode(b"short").decode()}, "32 bytes"),
        ({"EHR_SECRET_KEY": ""}, "no session secret"),
        ({"EHR_SECRET_KEY": "too-short"}, "too short"),
        ({"EHR_ENV": "staging"}, "EHR_ENV"),
        ({"EHR_AUDIT_KEY": ""}, "no audit-chain key"),
        ({"EHR_API_AUTH": "open"}, "refused in production"),
    ],
)
def test_bad_secrets_are_refused_with_a_precise_message(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        load_secrets(_config(tmp_path, **override), tmp_path)


def test_one_key_for_two_purposes_is_refused(tmp_path):
    key = _b64()
    with pytest.raises(ConfigError, match="differ"):
        load_secrets(_config(tmp_path, EHR_MASTER_KEY=key, EHR_BLIND_INDEX_KEY=key), tmp_path)
    with pytest.raises(ConfigError, match="differ"):
        load_secrets(_config(tmp_path, EHR_SECRET_KEY=key, EHR_BLIND_INDEX_KEY=key), tmp_path)


def test_key_file_readable_by_others_is_refused(tmp_path):
    config = _config(tmp_path)
    os.chmod(config["EHR_MASTER_KEY_FILE"], 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_secrets(config, tmp_path)


def test_app_refuses_to_start_without_secrets(tmp_path):
    from ehr import create_app

    with pytest.raises(ConfigError):
        create_app({"TESTING": True, "EHR_INSTANCE_PATH": str(tmp_path), "EHR_ENV": "production"})


def test_error_messages_never_contain_key_material(tmp_path):
    bad = "QUJD" * 3  # valid base64, wrong length
    with pytest.raises(ConfigError) as caught:
        load_secrets(_config(tmp_path, EHR_BLIND_INDEX_KEY=bad), tmp_path)
    assert bad not in str(caught.value)
