"""One-time activation codes: bound to the login name (CCCD or username), single use, 7 days."""

from __future__ import annotations

import pytest

from auth_helpers import CCCD, OPS, PASSWORD, account_row, audit_rows, register_patient
from ehr.services import accounts


def _activate(browser, login: str, code: str, password: str = PASSWORD):
    return browser.submit("/auth/activate", {"login": login, "code": code, "password": password, "confirm": password})


def test_code_works_once(browser, store, patient):
    patient_id, code = patient
    assert _activate(browser, CCCD, code).headers["Location"] == "/auth/login?m=activated"
    again = _activate(browser, CCCD, code, "một-mật-khẩu-khác-42")
    assert again.status_code == 200 and "Mã kích hoạt không đúng" in again.get_data(as_text=True)
    assert browser.login(CCCD).status_code == 302  # the first password stands
    row = account_row(store, patient_id=patient_id)
    assert row["activation_hash"] is None and row["password_hash"].startswith("$argon2id$")
    assert [e["outcome"] for e in audit_rows(store, "account.activate")] == ["success", "failure"]


def test_code_expires_after_7_days(browser, patient, clock):
    _, code = patient
    clock.advance(7 * 86400 + 1)
    assert "Mã kích hoạt không đúng" in _activate(browser, CCCD, code).get_data(as_text=True)


@pytest.mark.parametrize("login", ["079188000999", "someone.else"])
def test_code_only_works_for_its_own_login_name(browser, store, patient, login):
    register_patient(store, "079188000999", "Lê Văn Khác")
    _, code = patient
    assert "Mã kích hoạt không đúng" in _activate(browser, login, code).get_data(as_text=True)


def test_weak_or_mismatched_passwords_are_refused_before_the_code_is_spent(browser, patient):
    _, code = patient
    assert "ít nhất 10 ký tự" in _activate(browser, CCCD, code, "ngắn").get_data(as_text=True)
    assert "quá phổ biến" in _activate(browser, CCCD, code, "1234567890").get_data(as_text=True)
    mismatch = browser.submit("/auth/activate", {"login": CCCD, "code": code, "password": PASSWORD, "confirm": PASSWORD + "x"})
    assert "không khớp" in mismatch.get_data(as_text=True)
    assert _activate(browser, CCCD, code).status_code == 302


def test_new_code_replaces_the_old_one_and_activated_accounts_get_none(store, patient, clock):
    patient_id, old = patient
    new = accounts.create_patient_account(store, OPS, patient_id, now=clock())
    assert new != old and len(new) == 14
    assert account_row(store, patient_id=patient_id)["activation_hash"] == accounts.activation_token(store, new)


def test_staff_activation_code_then_totp_enrolment(browser, store, facility, clock):
    _, code = accounts.create_staff(store, OPS, username="bs.lan", role="doctor", organization_id=facility, display_name="BS. Lan",
                                    now=clock())
    assert browser.login("bs.lan").status_code == 200  # no password yet: the generic answer
    assert _activate(browser, "BS.Lan", code).status_code == 302
    assert browser.login("bs.lan").headers["Location"] == "/auth/totp/enrol"


def test_patient_account_needs_a_visible_patient_with_one_cccd(store, facility, clock):
    from ehr.services import policy, resources
    from ehr.services.policy import Denied

    no_cccd = resources.create(store, OPS, {"resourceType": "Patient", "active": True, "name": [{"text": "Vô Danh"}]}).version.logical_id
    with pytest.raises(accounts.AccountError):
        accounts.create_patient_account(store, OPS, no_cccd, now=clock())
    other_clinic = policy.staff_context("acc-x", "org-elsewhere", "receptionist")
    with pytest.raises(Denied):  # staff of a facility that does not see the patient: like not found
        accounts.create_patient_account(store, other_clinic, register_patient(store), now=clock())


def test_facility_admin_creates_staff_of_their_own_facility_only(store, facility, clock):
    from ehr.services import policy
    from ehr.services.policy import Denied

    admin = policy.staff_context("admin-1", facility, "admin")
    _, code = accounts.create_staff(store, admin, username="le.tan", role="receptionist", organization_id=facility,
                                    display_name="Lễ tân", now=clock())
    assert code
    with pytest.raises(Denied):
        accounts.create_staff(store, admin, username="x.y", role="doctor", organization_id="another-org", display_name="X", now=clock())
    with pytest.raises(Denied):
        accounts.create_staff(store, policy.staff_context("n-1", facility, "nurse"), username="x.z", role="doctor",
                              organization_id=facility, display_name="X", now=clock())
    assert [e["principal"] for e in audit_rows(store, "account.create")] == ["staff:admin-1"]
