"""Changing one's password (staff and patients), the forced change after a temporary password,
and the QR code of the TOTP enrolment page."""

from __future__ import annotations

import re

from auth_helpers import CCCD, OPS, PASSWORD, Browser, account_row, audit_rows
from ehr.services import accounts, passwords

NEW = "một-mật-khẩu-mới-2468"


def _change(browser, current: str, new: str = NEW, confirm: str | None = None):
    return browser.submit("/auth/password", {"current": current, "password": new, "confirm": new if confirm is None else confirm})


def test_staff_changes_the_password_and_other_sessions_end(app, browser, store, staff):
    name = staff("nurse")
    other = Browser(app.test_client())
    assert other.login(name).status_code == 302 and browser.login(name).status_code == 302
    page = browser.get("/auth/password").get_data(as_text=True)
    assert "Đổi mật khẩu" in page and 'name="current"' in page
    response = _change(browser, PASSWORD)
    assert response.status_code == 302 and response.headers["Location"] == "/clinic/"
    assert browser.get("/clinic/").status_code == 200  # this person goes on, in a new session
    assert other.get("/clinic/").status_code == 302  # the other session ended
    assert passwords.verify(account_row(store, username=name)["password_hash"], NEW)
    assert browser.logout().status_code == 302
    assert browser.login(name, PASSWORD).status_code == 200  # the old password is gone
    assert browser.login(name, NEW).status_code == 302
    assert [e["outcome"] for e in audit_rows(store, "password.change")] == ["success"]


def test_wrong_current_password_weak_or_mismatched_new_ones_are_refused_in_vietnamese(browser, store, staff):
    name = staff("receptionist")
    browser.login(name)
    cases = [
        (_change(browser, "không-phải-mật-khẩu-1"), "Mật khẩu hiện tại không đúng."),
        (_change(browser, PASSWORD, "ngắn"), "Mật khẩu mới: Mật khẩu cần ít nhất 10 ký tự."),
        (_change(browser, PASSWORD, "1234567890"), "quá phổ biến"),
        (_change(browser, PASSWORD, f"{name}-abc-123"), "không được chứa tên đăng nhập"),
        (_change(browser, PASSWORD, NEW, NEW + "x"), "Hai mật khẩu mới không khớp."),
        (_change(browser, PASSWORD, PASSWORD), "Mật khẩu mới phải khác mật khẩu hiện tại."),
        (_change(browser, ""), "Vui lòng nhập mật khẩu hiện tại."),
    ]
    for response, message in cases:
        page = response.get_data(as_text=True)
        assert response.status_code == 422 and message in page, message
        assert PASSWORD not in page and NEW not in page  # passwords are never sent back
    assert passwords.verify(account_row(store, username=name)["password_hash"], PASSWORD)
    assert [e["outcome"] for e in audit_rows(store, "password.change")] == ["failure"]
    english = browser.submit("/auth/password?lang=en", {"current": "wrong-password-12", "password": NEW, "confirm": NEW})
    assert "The current password is wrong." in english.get_data(as_text=True)


def test_wrong_current_passwords_are_limited(browser, staff):
    browser.login(staff("nurse"))
    for _ in range(accounts.CHANGE_MAX_FAILURES):
        assert _change(browser, "sai-mật-khẩu-000").status_code == 422
    refused = _change(browser, PASSWORD)
    assert refused.status_code == 429 and "Quá nhiều lần thử" in refused.get_data(as_text=True)


def test_patient_changes_the_password(browser, store, patient):
    patient_id, code = patient
    browser.submit("/auth/activate", {"login": CCCD, "code": code, "password": PASSWORD, "confirm": PASSWORD})
    assert browser.login(CCCD).status_code == 302
    response = _change(browser, PASSWORD)
    assert response.headers["Location"] == "/healthbook/"
    browser.logout()
    assert browser.login(CCCD, NEW).status_code == 302
    (row,) = audit_rows(store, "password.change")
    assert row["compartment"] == patient_id  # in the patient's own access log


def test_a_temporary_password_opens_only_the_change_page(browser, store, facility):
    _, temporary = accounts.create_staff(store, OPS, username="dd.tam", role="nurse", organization_id=facility,
                                         display_name="Điều dưỡng Tâm", temporary=True, now=0)
    assert temporary and account_row(store, username="dd.tam")["must_change_password"]
    assert browser.login("dd.tam", temporary).headers["Location"] == "/auth/password"
    for path in ("/clinic/", "/clinic/patients", "/healthbook/"):
        assert browser.get(path).headers["Location"] == "/auth/password", path
    page = browser.get("/auth/password").get_data(as_text=True)
    assert "mật khẩu tạm thời" in page
    assert _change(browser, temporary).headers["Location"] == "/clinic/"
    assert browser.get("/clinic/").status_code == 200
    assert not account_row(store, username="dd.tam")["must_change_password"]


def test_enrolment_page_shows_a_qr_code_made_here(browser, staff):
    response = browser.login(staff("doctor"))
    assert response.headers["Location"] == "/auth/totp/enrol"
    page = browser.get("/auth/totp/enrol").get_data(as_text=True)
    svg = re.search(r"<svg[^>]*class=\"totp-qr\"[^>]*>.*?</svg>", page, re.S)
    assert svg and "<path" in svg.group(0) and "<title>" in svg.group(0)
    assert re.search(r"<code>[A-Z2-7]{32}</code>", page)  # the typed secret stays as a fallback
    assert "data:" not in page and "<script" not in page  # the CSP allows neither
