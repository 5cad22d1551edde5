"""The login throttle under real gunicorn: 3 worker processes share one count in the database.
All guesses come from one source (loopback; the forwarded-for header does not count), so they hit
the (source, name) pair's limit of 20."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from auth_helpers import COOKIE, PASSWORD, audit_rows
from e2e.conftest import start_gunicorn, stop_gunicorn

pytestmark = pytest.mark.e2e
_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
_SET = re.compile(rf"{re.escape(COOKIE)}=([^;]+)")


def _attacker(base: str) -> tuple[str, str]:
    """A session cookie and its CSRF token, as a browser would hold them."""
    response = httpx.get(f"{base}/auth/login", timeout=30)
    return _SET.search(response.headers["set-cookie"]).group(1), _TOKEN.search(response.text).group(1)


def test_60_concurrent_guesses_on_3_workers_evaluate_exactly_20(app_config, store, staff, tmp_path):
    name = staff("nurse")
    # Backoff off, so the hourly cap itself is what stops the guesses.
    proc, server = start_gunicorn(app_config, tmp_path / "gunicorn.log", workers=3, EHR_JOB_RUNNER="0", EHR_LOGIN_BACKOFF_AFTER="1000")
    try:
        attackers = [_attacker(server.base) for _ in range(6)]

        def guess(i: int) -> int:
            cookie, token = attackers[i % len(attackers)]
            # The cookie is Secure; over this loopback HTTP test server it is replayed by hand.
            form = {"login": name, "password": f"wrong-{i:03d}-guess", "csrf_token": token}
            response = httpx.post(f"{server.base}/auth/login", timeout=60, data=form,
                                  headers={"Cookie": f"{COOKIE}={cookie}", "X-Forwarded-For": f"198.51.100.{i}"})
            return response.status_code

        with ThreadPoolExecutor(max_workers=60) as pool:
            statuses = list(pool.map(guess, range(60)))
        assert statuses.count(200) == 20 and statuses.count(429) == 40, statuses
        cookie, token = attackers[0]
        right = httpx.post(f"{server.base}/auth/login", timeout=30, data={"login": name, "password": PASSWORD, "csrf_token": token},
                           headers={"Cookie": f"{COOKIE}={cookie}"})
        assert right.status_code == 429  # the owner's right password is not even looked at for now
    finally:
        stop_gunicorn(proc)
    outcomes = [e["outcome"] for e in audit_rows(store, "login")]
    assert outcomes.count("failure") == 20 and outcomes.count("refused") == 41 and "success" not in outcomes
    log = (tmp_path / "gunicorn.log").read_text()
    assert '"POST /auth/login" 429' in log  # the access log has the request line, nothing typed
    assert "-guess" not in log and PASSWORD not in log and name not in log
