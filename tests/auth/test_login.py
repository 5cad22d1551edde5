"""Password login: Argon2id hashes, one generic answer for every wrong credential, safe `next`."""

from __future__ import annotations

import re

import pytest
from argon2 import PasswordHasher

from auth_helpers import CCCD, PASSWORD, account_row, audit_rows
from ehr.services import passwords


def test_passwords_are_argon2id_with_strong_parameters(store, staff):
    stored = account_row(store, username=staff("nurse"))["password_hash"]
    match = re.fullmatch(r"\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[^$]+\$[^$]+", stored)
    assert match, stored
    m, t, p = map(int, match.groups())
    assert m >= 19 * 1024 and t >= 2 and p >= 1  # OWASP floor (19 MiB, 2 passes)


def test_right_password_signs_in_and_is_audited(browser, store, staff):
    name = staff("nurse")
    response = browser.login(name, next_path="/fhir/metadata")
    assert response.status_code == 302 and response.headers["Location"] == "/fhir/metadata"
    assert 'action="/auth/logout"' in browser.get("/").get_data(as_text=True)
    [event] = audit_rows(store, "login")
    assert event["outcome"] == "success" and event["principal"] == f"staff:{account_row(store, username=name)['account_id']}"


@pytest.mark.parametrize("case", ["wrong-password", "unknown-user", "not-a-name", "unknown-cccd"])
def test_wrong_credentials_get_one_generic_answer(browser, store, staff, case):
    name = staff("nurse")
    login = {"wrong-password": name, "unknown-user": "ghost.user", "not-a-name": "??", "unknown-cccd": "079099000001"}[case]
    response = browser.login(login, "sai-mật-khẩu-123" if case == "wrong-password" else PASSWORD)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Tên đăng nhập hoặc mật khẩu không đúng." in page
    assert f'value="{login}"' in page  # the login name is kept
    assert PASSWORD not in page and "sai-mật-khẩu" not in page  # password not
    assert 'action="/auth/logout"' not in browser.get("/").get_data(as_text=True)
    [event] = audit_rows(store, "login")
    assert event["outcome"] == "failure"
    assert (event["principal"] == "anonymous") == (case != "wrong-password")


def test_next_only_leads_to_local_paths(browser, staff):
    name = staff("nurse")
    for evil in ("https://evil.example/x", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"):
        response = browser.login(name, next_path=evil)
        assert response.headers["Location"] == "/", evil
        browser.logout()


def test_disabled_account_cannot_sign_in_and_loses_its_session(browser, store, staff):
    from auth_helpers import OPS
    from ehr.services import accounts

    name = staff("receptionist")
    browser.login(name)
    accounts.set_active(store, OPS, name, False)
    assert 'action="/auth/logout"' not in browser.get("/").get_data(as_text=True)  # session ended on the next request
    response = browser.login(name)
    assert response.status_code == 200 and "không đúng" in response.get_data(as_text=True)


def test_hash_made_with_old_parameters_is_upgraded_at_login(browser, store, staff, monkeypatch):
    from ehr.store import access
    from ehr.store.access import INTERNAL

    name = staff("nurse")
    weak = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1).hash(PASSWORD)
    with store.writing(INTERNAL) as uow:
        access.update_account(uow, account_row(store, username=name)["account_id"], password_hash=weak)
    assert browser.login(name).status_code == 302
    assert account_row(store, username=name)["password_hash"] != weak
    assert not passwords.needs_rehash(account_row(store, username=name)["password_hash"])


@pytest.mark.parametrize("candidate, code", [
    ("short1234", "short"), ("1234567890", "common"), ("Password123", "common"), ("aaaaaaaaaaaa", "common"),
    ("nurse.zero-is-my-name", "login-name"), ("x" * 129, "long"),
])
def test_new_password_rules(candidate, code):
    with pytest.raises(passwords.PasswordRejected) as info:
        passwords.check_new(candidate, login_name="nurse.zero")
    assert info.value.code == code
    assert passwords.check_new("một câu dài dễ nhớ 2026") == "một câu dài dễ nhớ 2026"


def test_patient_signs_in_with_cccd_after_activation(browser, store, patient):
    patient_id, code = patient
    spaced = f"{CCCD[:4]} {CCCD[4:8]} {CCCD[8:]}"  # as printed on the card
    assert browser.submit("/auth/activate", {"login": spaced, "code": code.lower(), "password": PASSWORD, "confirm": PASSWORD}).status_code == 302
    assert browser.login(CCCD).status_code == 302
    [event] = audit_rows(store, "login")
    assert event["outcome"] == "success" and event["compartment"] == patient_id  # in the patient's own access log
