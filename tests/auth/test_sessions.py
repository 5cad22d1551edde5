"""Server-side sessions: cookie flags, a new id at login, logout revokes, idle and absolute timeouts."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from auth_helpers import BASE, CCCD, COOKIE, PASSWORD, Browser, audit_rows
from ehr.store.schema import sessions


def _signed_in(browser) -> bool:
    return 'action="/auth/logout"' in browser.get("/").get_data(as_text=True)


def _rows(store) -> list[dict]:
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(sessions)).mappings()]


def test_cookie_flags_and_only_a_hash_stored(browser, store, staff):
    response = browser.login(staff("nurse"))
    header = response.headers["Set-Cookie"]
    assert header.startswith(f"{COOKIE}=")
    flags = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
    assert {"secure", "httponly", "path"} <= flags and "domain" not in flags and "expires" not in flags
    assert "SameSite=Lax" in header and "Path=/" in header
    value = browser.session_cookie()
    assert len(value) >= 43  # 256 bits, base64url
    [row] = _rows(store)
    assert row["session_hash"] == hashlib.sha256(value.encode()).digest()
    assert value not in row["data"] and value.encode() not in row["session_hash"]


def test_visitors_without_a_form_get_no_session(browser, store):
    response = browser.get("/")
    assert "Set-Cookie" not in response.headers and not _rows(store)


def test_login_issues_a_new_session_id_and_planted_cookies_are_worthless(browser, app, staff):
    name = staff("nurse")
    browser.client.set_cookie(COOKIE, "attacker-chosen-value", domain="localhost")
    before = browser.session_cookie()
    browser.token()  # the login form: a pre-login session under a server-made id
    pre_login = browser.session_cookie()
    assert pre_login != before
    browser.login(name)
    after = browser.session_cookie()
    assert after not in (before, pre_login)
    attacker = app.test_client()
    attacker.set_cookie(COOKIE, pre_login, domain="localhost")
    assert 'action="/auth/logout"' not in attacker.get("/", base_url=BASE).get_data(as_text=True)


def test_cookie_replayed_after_logout_is_anonymous(browser, app, store, staff):
    browser.login(staff("nurse"))
    stolen = browser.session_cookie()
    assert browser.logout().headers["Location"] == "/auth/login?m=logged-out"
    assert not _rows(store)
    replay = app.test_client()
    replay.set_cookie(COOKIE, stolen, domain="localhost")
    assert 'action="/auth/logout"' not in replay.get("/", base_url=BASE).get_data(as_text=True)
    assert [e["outcome"] for e in audit_rows(store, "logout")] == ["success"]


def test_staff_idle_timeout_is_15_minutes(browser, staff, clock):
    browser.login(staff("receptionist"))
    clock.advance(14 * 60)
    assert _signed_in(browser)  # activity renews the idle timer
    clock.advance(14 * 60)
    assert _signed_in(browser)
    clock.advance(15 * 60 + 1)
    assert not _signed_in(browser)


def test_a_pages_own_refresh_does_not_keep_the_session_alive(browser, staff, clock):
    browser.login(staff("receptionist"))
    for _ in range(3):  # today's list refreshing itself on an unattended screen
        clock.advance(4 * 60)
        assert browser.get("/clinic/?part=list", headers={"X-EHR-Refresh": "1"}).status_code == 200
    clock.advance(4 * 60)  # 16 minutes after the last request of the user
    assert browser.get("/clinic/?part=list", headers={"X-EHR-Refresh": "1"}).status_code == 302
    assert not _signed_in(browser)


def test_patient_idle_timeout_is_30_minutes(browser, patient, clock):
    _, code = patient
    browser.submit("/auth/activate", {"login": CCCD, "code": code, "password": PASSWORD, "confirm": PASSWORD})
    browser.login(CCCD)
    clock.advance(29 * 60)
    assert _signed_in(browser)
    clock.advance(30 * 60 + 1)
    assert not _signed_in(browser)


def test_absolute_timeout_is_12_hours(browser, staff, clock):
    browser.login(staff("nurse"))
    for _ in range(12 * 60 // 10 - 1):
        clock.advance(10 * 60)
        assert _signed_in(browser)
    clock.advance(10 * 60)
    assert not _signed_in(browser)


def test_login_required_pages_send_expired_sessions_to_login(app, app_config, staff, clock):
    from ehr import create_app
    from ehr.auth.current import current_context, login_required

    web = create_app(app_config)
    web.config["EHR_CLOCK"] = clock

    @web.get("/_test/workspace")
    @login_required(kind="staff", roles=("doctor", "nurse"))
    def workspace() -> str:
        ctx = current_context()
        return f"{ctx.kind} {ctx.role} {ctx.organization}"

    browser = Browser(web.test_client())
    assert browser.get("/_test/workspace").headers["Location"] == "/auth/login?next=/_test/workspace"
    browser.login(staff("receptionist"))
    assert browser.get("/_test/workspace").status_code == 403  # wrong role
    browser.logout()
    browser.login(staff("nurse"))
    page = browser.get("/_test/workspace")
    assert page.status_code == 200 and page.get_data(as_text=True).startswith("staff nurse ")
    clock.advance(16 * 60)
    assert browser.get("/_test/workspace").headers["Location"] == "/auth/login?next=/_test/workspace&m=session-expired"
