"""Operator commands for web accounts: `flask ehr staff ...`, `flask ehr patient-account create`."""

from __future__ import annotations

import re

from auth_helpers import PASSWORD, account_row, audit_rows, register_patient


def _run(app, *args: str, input: str | None = None):  # noqa: A002 - click's name
    return app.test_cli_runner().invoke(args=["ehr", *args], input=input)


def test_staff_create_with_prompted_password(app, store, facility, browser):
    result = _run(app, "staff", "create", "--username", "yta.hoa", "--role", "nurse", "--organization", facility, "--name", "Y tá Hoa",
                  input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert browser.login("yta.hoa").status_code == 302
    [event] = audit_rows(store, "account.create")
    assert event["principal"].startswith("operator:")


def test_staff_create_with_activation_code_and_refusals(app, store, facility):
    result = _run(app, "staff", "create", "--username", "bs.minh", "--role", "doctor", "--organization", facility, "--name", "BS. Minh",
                  "--activation-code")
    assert result.exit_code == 0, result.output
    assert re.search(r"activation code .*: [A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}$", result.output.strip())
    again = _run(app, "staff", "create", "--username", "BS.Minh", "--role", "doctor", "--organization", facility, "--name", "x",
                 "--activation-code")
    assert again.exit_code != 0 and "already taken" in again.output
    nowhere = _run(app, "staff", "create", "--username", "bs.an", "--role", "doctor", "--organization", "no-such-org", "--name", "x",
                   "--activation-code")
    assert nowhere.exit_code != 0 and "no such Organization" in nowhere.output
    weak = _run(app, "staff", "create", "--username", "bs.binh", "--role", "nurse", "--organization", facility, "--name", "x",
                input="1234567890\n1234567890\n")
    assert weak.exit_code != 0 and "too common" in weak.output


def test_reset_totp_disable_enable_unlock(app, store, staff):
    name = staff("doctor")
    assert _run(app, "staff", "reset-totp", "--username", name).exit_code == 0
    assert _run(app, "staff", "disable", "--username", name).exit_code == 0
    assert account_row(store, username=name)["active"] is False
    assert _run(app, "staff", "enable", "--username", name).exit_code == 0
    assert _run(app, "staff", "unlock", "--username", name).exit_code == 0
    assert _run(app, "staff", "disable", "--username", "ghost").exit_code != 0
    assert [e["action"] for e in audit_rows(store) if e["principal"].startswith("operator:")][-4:] == [
        "totp.reset", "account.disable", "account.enable", "login.unlock"]


def test_patient_account_create_prints_a_code(app, store):
    patient_id = register_patient(store)
    result = _run(app, "patient-account", "create", "--patient", patient_id)
    assert result.exit_code == 0 and "activation code" in result.output
    assert account_row(store, patient_id=patient_id)["kind"] == "patient"
    missing = _run(app, "patient-account", "create", "--patient", "does-not-exist")
    assert missing.exit_code != 0
