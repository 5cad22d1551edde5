"""Patient login through an external OpenID Connect provider (run in-process on loopback)."""

from __future__ import annotations

import logging
from typing import Any, Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from auth_helpers import CCCD, Browser, account_row, audit_rows, register_patient
from oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider


@pytest.fixture(scope="session")
def provider() -> Iterator[Provider]:
    idp = Provider()
    yield idp
    idp.close()


@pytest.fixture(scope="session")
def oidc_app(app, app_config, provider):  # type: ignore[no-untyped-def]
    from ehr import create_app

    return create_app({**app_config, "EHR_OIDC_ISSUER": provider.issuer, "EHR_OIDC_CLIENT_ID": CLIENT_ID, "EHR_OIDC_CLIENT_SECRET": CLIENT_SECRET})


@pytest.fixture
def idp(provider: Provider) -> Iterator[Provider]:
    provider.mode, provider.national_id = "ok", CCCD
    yield provider
    provider.mode, provider.national_id = "ok", None


def _login_via_provider(oidc_app: Any) -> tuple[Browser, Any]:
    web = Browser(oidc_app.test_client())
    start = web.get("/auth/oidc/login")
    assert start.status_code == 302
    approved = httpx.get(start.headers["Location"], timeout=10)  # the provider approves at once
    assert approved.status_code == 302
    back = urlsplit(approved.headers["location"])
    assert back.path == "/auth/oidc/callback"
    return web, web.get(f"{back.path}?{back.query}")


def _signed_in(web: Browser) -> bool:
    return 'action="/auth/logout"' in web.get("/").get_data(as_text=True)


def test_button_only_when_configured(browser, oidc_app):
    assert "/auth/oidc/login" not in browser.get("/auth/login").get_data(as_text=True)
    assert "/auth/oidc/login" in Browser(oidc_app.test_client()).get("/auth/login").get_data(as_text=True)
    assert browser.get("/auth/oidc/login").status_code == 404


def test_matching_national_id_logs_the_patient_in(store, oidc_app, idp):
    patient_id = register_patient(store)
    web, done = _login_via_provider(oidc_app)
    assert done.status_code == 302 and done.headers["Location"] == "/"
    assert _signed_in(web)
    row = account_row(store, patient_id=patient_id)
    assert row["kind"] == "patient" and row["password_hash"] is None and CCCD.encode() not in row["national_id_hash"]
    [event] = audit_rows(store, "login.oidc")
    assert event["outcome"] == "success" and event["principal"] == f"patient:{row['account_id']}" and event["compartment"] == patient_id
    again, _ = _login_via_provider(oidc_app)  # a second login finds the same account
    assert _signed_in(again) and account_row(store, patient_id=patient_id)["account_id"] == row["account_id"]


def test_account_made_at_registration_is_the_one_used(store, oidc_app, idp, patient):
    patient_id, _code = patient
    before = account_row(store, patient_id=patient_id)["account_id"]
    web, _ = _login_via_provider(oidc_app)
    assert _signed_in(web) and account_row(store, patient_id=patient_id)["account_id"] == before


@pytest.mark.parametrize("case", [
    "unknown-cccd", "no-claim", "malformed-claim", "wrong-nonce", "wrong-issuer", "wrong-audience", "foreign-audience-naming-us-azp",
    "bad-signature", "expired",
])
def test_refused_without_a_session(store, oidc_app, idp, case, caplog):
    caplog.set_level(logging.INFO, logger="ehr.auth.oidc")
    register_patient(store)
    if case == "unknown-cccd":
        idp.national_id = "079099000001"
    elif case == "no-claim":
        idp.national_id = None
    elif case == "malformed-claim":
        idp.national_id = f" {CCCD[:6]}-{CCCD[6:]}"
    else:
        idp.mode = case
    web, done = _login_via_provider(oidc_app)
    assert done.status_code == 403
    page = done.get_data(as_text=True)
    assert "Không đăng nhập được" in page and CCCD not in page
    assert not _signed_in(web)
    assert [e["outcome"] for e in audit_rows(store, "login.oidc")] == ["failure"]
    assert not [e for e in audit_rows(store) if e["outcome"] == "success" and e["action"].startswith("login")]
    reasons = [r.getMessage().rsplit(" ", 1)[-1] for r in caplog.records if r.name == "ehr.auth.oidc"]
    expected = {"wrong-nonce": "InvalidClaimError", "wrong-issuer": "InvalidClaimError", "wrong-audience": "InvalidClaimError",
                "foreign-audience-naming-us-azp": "InvalidClaimError", "bad-signature": "BadSignatureError", "expired": "ExpiredTokenError"}
    assert reasons == ([expected[case]] if case in expected else [])  # refused by the intended check


def test_callback_without_the_login_state_is_refused(store, oidc_app, idp):
    """A code delivered to another browser (or replayed) finds no state: refused."""
    register_patient(store)
    web = Browser(oidc_app.test_client())
    start = web.get("/auth/oidc/login")
    back = urlsplit(httpx.get(start.headers["Location"], timeout=10).headers["location"])
    stranger = Browser(oidc_app.test_client())
    assert stranger.get(f"{back.path}?{back.query}").status_code == 403
    assert not _signed_in(stranger)


def test_simultaneous_first_logins_share_one_account(store, clock):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from auth_helpers import OPS
    from ehr.services import accounts

    patient_id = register_patient(store)
    barrier = threading.Barrier(6)

    def first_login(_: int) -> str:
        barrier.wait()
        return accounts.patient_account_for(store, OPS, CCCD, now=clock()).account_id

    with ThreadPoolExecutor(max_workers=6) as pool:
        ids = set(pool.map(first_login, range(6)))
    assert ids == {account_row(store, patient_id=patient_id)["account_id"]}
