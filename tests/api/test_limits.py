"""Rate limits (Flask-Limiter): the FHIR API per (client, source) and per source, sign-in per source
and per (source, login name); 429 with Retry-After, an OperationOutcome on the API and a readable
page on the web. Through gunicorn with 2 workers the counters are shared (Redis)."""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

import httpx
import pytest
import redis
from flask import Flask

from ehr import create_app
from ehr.api import limits
from ehr.settings import ConfigError

FHIR = {"Accept": "application/fhir+json"}
REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def limited(app: Flask, app_config: dict[str, Any]) -> Iterator[Flask]:
    """The same database, rate limits on (memory storage: one process here)."""
    limited_app = create_app({**app_config, "EHR_RATELIMIT_ENABLED": "true", "EHR_RATELIMIT_API": "5 per hour",
                              "EHR_RATELIMIT_API_SOURCE": "8 per hour", "EHR_RATELIMIT_SIGNIN": "6 per hour",
                              "EHR_RATELIMIT_SIGNIN_PAIR": "3 per hour", "EHR_RATELIMIT_LOOKUP": "3 per hour"})
    yield limited_app
    limited_app.extensions["ehr.store"].engine.dispose()


def _get(client: Any, source: str, token: str | None = None) -> Any:
    headers = {**FHIR, **({"Authorization": f"Bearer {token}"} if token else {})}
    return client.get("/fhir/metadata", headers=headers, environ_overrides={"REMOTE_ADDR": source})


def test_api_answers_429_operation_outcome_with_retry_after(limited):
    client = limited.test_client()
    assert [_get(client, "10.0.0.1").status_code for _ in range(5)] == [200] * 5
    refused = _get(client, "10.0.0.1")
    assert refused.status_code == 429
    retry = int(refused.headers["Retry-After"])
    assert 1 <= retry <= 3600
    outcome = json.loads(refused.data)
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "throttled"
    # Another client (token) from the same source has its own count, up to the source's limit.
    assert _get(client, "10.0.0.1", token="another-client-token").status_code == 200
    assert _get(client, "10.0.0.2").status_code == 200  # another source is not affected


def test_api_source_limit_covers_every_client(limited):
    client = limited.test_client()
    statuses = [_get(client, "10.0.1.1", token=f"token-{n}").status_code for n in range(10)]
    assert statuses == [200] * 8 + [429] * 2  # new tokens do not buy more requests from one source


def _login(client: Any, source: str, login: str) -> Any:
    page = client.get("/auth/login", base_url="https://localhost", environ_overrides={"REMOTE_ADDR": source})
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    return client.post("/auth/login", base_url="https://localhost", data={"login": login, "password": "wrong-guess-0000", "csrf_token": token},
                       environ_overrides={"REMOTE_ADDR": source})


def test_sign_in_is_limited_per_pair_and_per_source_with_a_readable_page(limited):
    client = limited.test_client()
    assert [_login(client, "10.0.2.1", "le.thi").status_code for _ in range(3)] == [200] * 3
    refused = _login(client, "10.0.2.1", "le.thi")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    page = refused.get_data(as_text=True)
    assert "Quá nhiều yêu cầu" in page and "Too many requests" in page and "le.thi" not in page
    # The same name from another source is another pair; other names from this source count
    # against the source (6 posts per hour).
    assert _login(client, "10.0.2.9", "le.thi").status_code == 200
    assert [_login(client, "10.0.2.1", f"name.{n}").status_code for n in range(3)] == [200, 200, 429]


def test_clinic_cccd_look_ups_are_limited_per_staff_account(limited, store):
    from auth.auth_helpers import PASSWORD, Browser
    from ehr.services import accounts, resources
    from ehr.services.context import AccessContext
    from ehr.store.keys import now_us

    resources.update(store, AccessContext.operator("test"), "Organization", "org-desk", {"resourceType": "Organization", "id": "org-desk", "name": "Quầy"})
    desks = []
    for name in ("le.tan.1", "le.tan.2"):
        accounts.create_staff(store, AccessContext.operator("test"), username=name, role="receptionist", organization_id="org-desk",
                              display_name=name, password=PASSWORD, now=now_us())
        desk = Browser(limited.test_client())
        assert desk.login(name).status_code == 302
        desks.append(desk)
    def post(desk: Browser, path: str, data: dict[str, str]) -> Any:
        token = re.search(r'name="csrf_token" value="([^"]+)"', desk.get("/clinic/patients").get_data(as_text=True)).group(1)  # type: ignore[union-attr]
        return desk.post(path, {**data, "csrf_token": token})

    def check_in(desk: Browser) -> int:
        return post(desk, "/clinic/patients/check-in", {"cccd": "036095000333"}).status_code

    assert [check_in(desks[0]) for _ in range(3)] == [422] * 3  # nobody holds the number
    refused = post(desks[0], "/clinic/patients", {"q": "036095000333"})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert check_in(desks[1]) == 422  # another account of the same desk still works


def test_production_refuses_per_worker_memory_storage(tmp_path):
    app = Flask(__name__)
    app.config.update(EHR_ENV="production")
    with pytest.raises(ConfigError, match="EHR_RATELIMIT_STORAGE"):
        limits.storage_uri(app)
    app.config["EHR_RATELIMIT_STORAGE"] = "memory://"
    with pytest.raises(ConfigError, match="shared"):
        limits.storage_uri(app)
    app.config["EHR_RATELIMIT_STORAGE"] = REDIS
    assert limits.storage_uri(app) == REDIS


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.mark.e2e
@pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")
def test_two_gunicorn_workers_share_the_counters_in_redis(app, app_config, tmp_path):
    from e2e.conftest import start_gunicorn, stop_gunicorn

    proc, server = start_gunicorn(app_config, tmp_path / "gunicorn.log", workers=2, EHR_JOB_RUNNER="0", EHR_RATELIMIT_ENABLED="true",
                                  EHR_RATELIMIT_STORAGE=REDIS, EHR_RATELIMIT_API="10 per hour")
    try:
        statuses = []
        for _ in range(30):
            # A new connection each time, so both workers answer (memory counters would allow 2 x 10).
            with httpx.Client(base_url=server.base, timeout=30) as http:
                response = http.get("/fhir/metadata", headers={**FHIR, "Connection": "close"})
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert int(response.headers["Retry-After"]) >= 1 and response.json()["issue"][0]["code"] == "throttled"
        assert statuses.count(200) == 10 and statuses.count(429) == 20, statuses
    finally:
        stop_gunicorn(proc)
