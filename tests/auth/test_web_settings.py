"""Start-up checks of the web login settings."""

from __future__ import annotations

import pytest

from ehr.settings import ConfigError, load_config


def test_defaults(tmp_path):
    config = load_config({}, {}, tmp_path)
    assert config["EHR_SESSION_COOKIE_SECURE"] is True
    assert (config["EHR_STAFF_IDLE_MINUTES"], config["EHR_PATIENT_IDLE_MINUTES"], config["EHR_SESSION_MAX_HOURS"]) == (15, 30, 12)
    assert (config["EHR_LOGIN_MAX_FAILURES"], config["EHR_LOGIN_WINDOW_MINUTES"], config["EHR_LOGIN_BACKOFF_AFTER"]) == (20, 60, 5)
    assert config["EHR_OIDC_ISSUER"] == "" and config["EHR_OIDC_NATIONAL_ID_CLAIM"] == "national_id"


def test_environment_strings_are_parsed(tmp_path):
    config = load_config({"EHR_STAFF_IDLE_MINUTES": "10", "EHR_SESSION_COOKIE_SECURE": "false"}, {}, tmp_path)
    assert config["EHR_STAFF_IDLE_MINUTES"] == 10 and config["EHR_SESSION_COOKIE_SECURE"] is False


@pytest.mark.parametrize("over, message", [
    ({"EHR_SESSION_COOKIE_SECURE": "0"}, "refused in production"),
    ({"EHR_OIDC_ISSUER": "https://id.example.vn"}, "EHR_OIDC_CLIENT_ID"),
    ({"EHR_OIDC_ISSUER": "http://id.example.vn", "EHR_OIDC_CLIENT_ID": "ehr"}, "https://"),
    ({"EHR_LOGIN_MAX_FAILURES": "many"}, "whole number"),
    ({"EHR_STAFF_IDLE_MINUTES": "-5"}, "at least 1"),
])
def test_refusals(tmp_path, over, message):
    with pytest.raises(ConfigError, match=message):
        load_config({}, {"EHR_ENV": "production", "EHR_API_AUTH": "required", **over}, tmp_path)
