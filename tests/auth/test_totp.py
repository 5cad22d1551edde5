"""Second factor: doctors and admins enrol before any rights; codes work once; 5 tries per challenge."""

from __future__ import annotations

import re

from auth_helpers import OPS, account_row, audit_rows
from ehr.services import accounts, totp

_SECRET = re.compile(r"<code>([A-Z2-7]{32})</code>")


def _signed_in(browser) -> bool:
    return 'action="/auth/logout"' in browser.get("/").get_data(as_text=True)


def _enrol(browser, clock) -> str:
    page = browser.get("/auth/totp/enrol").get_data(as_text=True)
    secret = _SECRET.search(page).group(1)
    assert "otpauth://totp/" in page
    response = browser.code(totp.code_at(secret, clock()), "/auth/totp/enrol")
    assert response.status_code == 302
    return secret


def test_doctor_must_enrol_before_getting_a_session_with_rights(browser, store, staff, clock):
    name = staff("doctor")
    response = browser.login(name, next_path="/fhir/metadata")
    assert response.headers["Location"] == "/auth/totp/enrol"
    assert not _signed_in(browser)  # password alone: no rights
    assert browser.get("/auth/totp").headers["Location"] == "/auth/totp/enrol"
    secret = _enrol(browser, clock)
    assert _signed_in(browser)
    row = account_row(store, username=name)
    assert row["totp_secret"] and secret.encode() not in row["totp_secret"] and row["totp_last_step"]
    assert [e["action"] for e in audit_rows(store) if e["action"] in ("totp.enrol", "login")] == ["totp.enrol", "login"]


def test_enrolled_admin_needs_the_code_and_each_code_works_once(browser, staff, clock):
    name = staff("admin")
    browser.login(name)
    secret = _enrol(browser, clock)
    browser.logout()
    clock.advance(30)
    code = totp.code_at(secret, clock())
    assert browser.login(name).headers["Location"] == "/auth/totp"
    assert not _signed_in(browser)
    assert browser.code(code).status_code == 302 and _signed_in(browser)
    browser.logout()
    browser.login(name)
    response = browser.code(code)  # the same code again, in the same 30-s step: refused
    assert response.status_code == 200 and "đã được dùng" in response.get_data(as_text=True)
    clock.advance(30)
    assert browser.code(totp.code_at(secret, clock())).status_code == 302  # the next step's code works


def test_sixth_code_of_a_challenge_is_refused_even_when_right(browser, store, staff, clock):
    name = staff("doctor")
    browser.login(name)
    secret = _enrol(browser, clock)
    browser.logout()
    clock.advance(30)
    browser.login(name)
    for attempt in range(1, 6):
        response = browser.code("000000" if totp.code_at(secret, clock()) != "000000" else "111111")
        if attempt < 5:
            assert response.status_code == 200, attempt
    assert response.headers["Location"] == "/auth/login?m=restart"  # the 5th failure ends the challenge
    sixth = browser.post("/auth/totp", {"code": totp.code_at(secret, clock()), "csrf_token": browser.token()})
    assert sixth.headers["Location"] == "/auth/login"  # the 6th code, even right, finds no challenge
    assert not _signed_in(browser)
    assert [e["outcome"] for e in audit_rows(store, "login.totp")] == ["failure"] * 5


def test_challenge_counter_is_in_the_database(store, staff, clock):
    """A copy of the challenge (a replayed session, a second worker) gets no extra tries."""
    from ehr.services import logins

    account = accounts.get(store, account_row(store, username=staff("doctor"))["account_id"])
    challenge = logins.start_challenge(store, account, b"k" * 16, clock())
    secret = logins.enrolment_secret(store, challenge)
    limits = logins.Limits()
    results = [logins.totp_step(store, challenge, "000000" if totp.code_at(secret, clock()) != "000000" else "111111",
                                limits=limits, now=clock(), caller=logins.Caller()).status for _ in range(5)]
    assert results == ["invalid"] * 4 + ["exhausted"]
    sixth = logins.totp_step(store, challenge, totp.code_at(secret, clock()), limits=limits, now=clock(), caller=logins.Caller())
    assert sixth.status == "exhausted"
    assert account_row(store, username=account.username)["totp_secret"] is None  # the enrolment did not happen


def test_totp_is_optional_for_nurses_and_they_can_add_it(browser, store, staff, clock):
    name = staff("nurse")
    assert browser.login(name).headers["Location"] == "/"
    secret = _enrol(browser, clock)  # signed in, adds a second factor
    browser.logout()
    clock.advance(30)
    assert browser.login(name).headers["Location"] == "/auth/totp"
    assert browser.code(totp.code_at(secret, clock())).status_code == 302


def test_operator_reset_ends_sessions_and_requires_enrolment_again(browser, store, staff, clock):
    name = staff("doctor")
    browser.login(name)
    _enrol(browser, clock)
    accounts.reset_totp(store, OPS, name)
    assert not _signed_in(browser)
    assert browser.login(name).headers["Location"] == "/auth/totp/enrol"
    assert account_row(store, username=name)["totp_secret"] is None
    assert [e["outcome"] for e in audit_rows(store, "totp.reset")] == ["success"]
