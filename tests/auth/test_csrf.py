"""CSRF: every state-changing web route needs the form's token; the API and /auth/token do not."""

from __future__ import annotations

from auth_helpers import PASSWORD

API_EXEMPT = {"/auth/token"}  # authenticated by a signed client assertion, never by the cookie


def test_post_without_token_gets_the_400_page_and_with_token_works(browser, staff):
    name = staff("nurse")
    browser.token()  # a session exists, so only the token is missing
    refused = browser.post("/auth/login", {"login": name, "password": PASSWORD})
    assert refused.status_code == 400 and "<html" in refused.get_data(as_text=True)
    forged = browser.post("/auth/login", {"login": name, "password": PASSWORD, "csrf_token": "forged.token.value"})
    assert forged.status_code == 400
    assert browser.login(name).status_code == 302


def test_logout_without_token_does_not_log_out(browser, staff):
    browser.login(staff("nurse"))
    assert browser.post("/auth/logout").status_code == 400
    assert 'action="/auth/logout"' in browser.get("/").get_data(as_text=True)


def test_every_state_changing_web_route_requires_the_token(app, browser):
    """Enumerated from the URL map: a route added later is covered (or must be exempted here)."""
    browser.token()
    checked = 0
    for rule in app.url_map.iter_rules():
        unsafe = (rule.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"}
        if not unsafe or rule.rule.startswith("/fhir") or rule.rule in API_EXEMPT:
            continue
        path = rule.rule.replace("<", "").replace(">", "")
        for method in sorted(unsafe):
            response = browser.client.open(path, method=method, base_url="https://localhost", data={"x": "1"})
            assert response.status_code == 400, (method, rule.rule, response.status_code)
            checked += 1
    assert checked >= 4  # login, totp, totp/enrol, activate, logout


def test_api_and_token_endpoint_are_exempt(browser):
    token = browser.post("/auth/token", {"grant_type": "client_credentials"})
    assert token.status_code in (400, 401) and token.get_json()["error"]  # an OAuth answer, not a CSRF page
    created = browser.client.post("/fhir/Patient", base_url="https://localhost", json={"resourceType": "Patient", "active": True},
                                  headers={"Content-Type": "application/fhir+json"})
    assert created.status_code == 201
