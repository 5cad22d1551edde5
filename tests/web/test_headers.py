"""Security headers on every response (ehr/web/headers.py): pages, API, static files, error pages."""

from __future__ import annotations

import pytest

from auth.auth_helpers import OPS, PASSWORD
from clinic.clinic_helpers import sign_in
from ehr import create_app
from ehr.services import accounts, resources
from ehr.web.headers import CSP, HSTS

BASE = "https://localhost"
COMMON = {"Content-Security-Policy": CSP.format(styles=""), "X-Content-Type-Options": "nosniff",
          "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


def _security(response) -> dict[str, str | None]:
    return {name: response.headers.get(name) for name in [*COMMON, "Strict-Transport-Security"]}


@pytest.mark.parametrize("path, status, cache", [
    ("/", 200, "no-store"),
    ("/auth/login", 200, "no-store"),
    ("/clinic/", 302, "no-store"),
    ("/healthbook/", 302, "no-store"),
    ("/fhir/Patient", 200, "no-store"),
    ("/fhir/Patient/not-there", 404, "no-store"),
    ("/fhir/metadata", 200, "no-store"),
    ("/no/such/page", 404, "no-store"),
    ("/static/base.css", 200, "no-cache"),  # static: revalidated, never no-store
    ("/fhir/.well-known/smart-configuration", 200, "max-age=3600"),  # public discovery document
])
def test_every_response_has_the_security_headers(client, path, status, cache):
    response = client.get(path, base_url=BASE)
    response.close()  # a static file's response holds the file open
    assert response.status_code == status
    assert _security(response) == {**COMMON, "Strict-Transport-Security": None}  # no HSTS in development
    assert response.headers["Cache-Control"] == cache


def test_error_pages_and_production_hsts(app_config, tmp_path):
    production = create_app({**app_config, "EHR_INSTANCE_PATH": str(tmp_path), "EHR_ENV": "production", "EHR_API_AUTH": "required",
                             "EHR_RATELIMIT_STORAGE": "redis://127.0.0.1:9/0"})
    production.add_url_rule("/boom", "boom", lambda: 1 / 0)
    for path, status in [("/boom", 500), ("/no/such/page", 404), ("/fhir/Patient", 401), ("/static/base.css", 200)]:
        response = production.test_client().get(path, base_url=BASE)
        response.close()
        assert response.status_code == status
        assert _security(response) == {**COMMON, "Strict-Transport-Security": HSTS}, path


def test_clinic_pages_with_patient_data_are_never_cached(browser, store, clock):
    org = resources.create(store, OPS, {"resourceType": "Organization", "name": "Phòng khám An Bình", "active": True}).version.logical_id
    accounts.create_staff(store, OPS, username="le.tan", role="receptionist", organization_id=org, display_name="Lê Tân",
                          password=PASSWORD, now=clock())
    sign_in(browser, clock, "le.tan")
    for path in ("/clinic/", "/clinic/patients/new"):
        response = browser.get(path)
        assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
        assert _security(response) == {**COMMON, "Strict-Transport-Security": None}
