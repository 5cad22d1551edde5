"""Demo logins exist in development only."""

from __future__ import annotations

from typing import Any

import pytest

from auth.auth_helpers import OPS
from ehr.services import demo


def test_the_service_refuses_outside_development(app: Any, store: Any) -> None:
    with pytest.raises(demo.DemoRefused):
        demo.demo_logins(store, OPS, app.extensions["ehr.signing"], env="production")
    assert not demo.logins_present(store)


def test_the_command_makes_none_in_production_mode(app: Any, store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "EHR_ENV", "production")
    result = app.test_cli_runner().invoke(args=["ehr", "demo", "--patients", "1"])
    assert result.exit_code == 0, result.output
    assert "no demo logins outside development" in result.output and "password:" not in result.output
    assert not demo.logins_present(store)
