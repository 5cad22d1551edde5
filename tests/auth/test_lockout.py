"""Login throttle: per (source address, login name) pair at most 20 evaluated guesses per hour
with exponential backoff after 5 failures; per source at most 30 across names; per name a
ceiling of 200 from all sources together, so one attacker cannot lock the real user out.
Counted in the database (see test_lockout_workers.py)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from auth_helpers import OPS, PASSWORD, audit_rows
from ehr.services import logins

ATTACKER = "10.9.8.7"
OWNER = "192.0.2.44"


def _guess(browser, login: str, password: str, address: str = ATTACKER):
    # A forwarded-for header does not matter: the source is the connection's address.
    token = browser.token()
    return browser.post("/auth/login", {"login": login, "password": password, "csrf_token": token},
                        environ_overrides={"REMOTE_ADDR": address}, headers={"X-Forwarded-For": "203.0.113.9"})


@pytest.fixture
def no_backoff(app, monkeypatch):
    monkeypatch.setitem(app.config, "EHR_LOGIN_BACKOFF_AFTER", 1000)


@pytest.mark.parametrize("known", [True, False])
def test_21st_guess_from_one_source_is_refused_but_the_owner_still_signs_in(browser, store, staff, clock, no_backoff, known):
    name = staff("nurse") if known else "nobody.here"
    for n in range(20):
        response = _guess(browser, name, f"wrong-guess-{n:04d}")
        assert response.status_code == 200 and "không đúng" in response.get_data(as_text=True)
    refused = _guess(browser, name, PASSWORD)
    assert refused.status_code == 429 and 3000 < int(refused.headers["Retry-After"]) <= 3600
    assert "Quá nhiều lần thử" in refused.get_data(as_text=True)
    assert [e["outcome"] for e in audit_rows(store, "login")] == ["failure"] * 20 + ["refused"]
    # The attacker's 20 guesses do not lock the account: its owner, from another address, is in.
    assert _guess(browser, name, PASSWORD, OWNER).status_code == (302 if known else 200)
    clock.advance(3600)  # the window rolls on: the oldest guesses no longer count
    assert _guess(browser, name, PASSWORD).status_code == (302 if known else 200)


def test_one_source_cannot_spray_guesses_across_names(browser, staff, clock, no_backoff):
    """165 guesses a minute over many names was possible: now 30 per source per hour."""
    victim = staff("nurse")
    for n in range(30):
        assert _guess(browser, f"someone.{n}", "wrong-guess-xx").status_code == 200
    refused = _guess(browser, victim, PASSWORD)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 3000
    assert _guess(browser, victim, PASSWORD, OWNER).status_code == 302  # other sources are not affected


def test_many_sources_together_reach_the_name_ceiling(app, browser, staff, clock, no_backoff, monkeypatch):
    monkeypatch.setitem(app.config, "EHR_LOGIN_ACCOUNT_MAX_FAILURES", 25)
    name = staff("nurse")
    for n in range(25):
        assert _guess(browser, name, "wrong-guess-xx", f"10.1.{n}.1").status_code == 200
    assert _guess(browser, name, PASSWORD, OWNER).status_code == 429  # a distributed attack does hit the ceiling
    logins.unlock(logins_store(app), OPS, name, now=clock())
    assert _guess(browser, name, PASSWORD, OWNER).status_code == 302


def logins_store(app):
    return app.extensions["ehr.store"]


def test_backoff_after_five_failures(browser, staff, clock):
    name = staff("receptionist")
    for n in range(5):
        assert _guess(browser, name, "wrong-guess-xx").status_code == 200
    assert _guess(browser, name, PASSWORD).status_code == 429  # 2^0 s not yet passed
    assert _guess(browser, name, PASSWORD, OWNER).status_code == 302  # the backoff is the pair's only
    clock.advance(1)
    assert _guess(browser, name, "wrong-guess-yy").status_code == 200  # 6th failure
    clock.advance(1)
    response = _guess(browser, name, PASSWORD)  # now 2^1 s must pass
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    clock.advance(1)
    assert _guess(browser, name, PASSWORD).status_code == 302


def test_success_does_not_reset_the_count(store, staff, clock):
    """The limit is on guesses per hour: a legitimate login between them does not buy more."""
    name = staff("nurse")
    limits = logins.Limits(max_failures=3, backoff_after=100)
    caller = logins.Caller()
    for _ in range(2):
        assert logins.password_step(store, name, "wrong-guess-1", limits=limits, now=clock(), caller=caller).status == "invalid"
    assert logins.password_step(store, name, PASSWORD, limits=limits, now=clock(), caller=caller).status == "ok"
    assert logins.password_step(store, name, "wrong-guess-2", limits=limits, now=clock(), caller=caller).status == "invalid"
    assert logins.password_step(store, name, PASSWORD, limits=limits, now=clock(), caller=caller).status == "throttled"


def test_operator_can_lift_a_lockout(store, staff, clock):
    name = staff("nurse")
    limits = logins.Limits(max_failures=2, backoff_after=100)
    for _ in range(2):
        logins.password_step(store, name, "wrong-guess", limits=limits, now=clock(), caller=logins.Caller())
    assert logins.password_step(store, name, PASSWORD, limits=limits, now=clock(), caller=logins.Caller()).status == "throttled"
    logins.unlock(store, OPS, name.upper(), now=clock())  # the same name however it is typed
    assert logins.password_step(store, name, PASSWORD, limits=limits, now=clock(), caller=logins.Caller()).status == "ok"


def test_concurrent_claims_never_pass_the_limit(store, clock):
    """The decision and the count are one atomic step: 24 threads racing for 5 places get 5."""
    limits = logins.Limits(max_failures=5, backoff_after=100)
    key = logins.keys_for(store, "race.name", b"source-0")
    barrier = threading.Barrier(24)

    def claim(_: int) -> bool:
        barrier.wait()
        attempt, _retry, _row = logins.claim_attempt(store, key, limits, clock())
        return attempt is not None

    with ThreadPoolExecutor(max_workers=24) as pool:
        granted = list(pool.map(claim, range(24)))
    assert granted.count(True) == 5
