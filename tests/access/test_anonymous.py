"""Requests that carry no credentials at all (no token, no session) write nothing: no audit row,
no session row, no other row. A failed credential is still audited (test_audit_trail.py)."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import func, select

from ehr.store.schema import ALL_TABLES

BASE = "https://localhost"
_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def _counts(store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in ALL_TABLES}


def test_anonymous_requests_add_no_audit_or_session_rows(secured, store):
    before = _counts(store)
    web, api = secured.test_client(), secured.test_client()
    nobody = str(uuid.uuid4())
    for path in ["/", "/no/such/page", "/static/base.css", "/clinic/", "/clinic/patients/new", "/healthbook/",
                 f"/healthbook/{nobody}/", "/auth/login", "/auth/activate", "/auth/totp"]:
        web.get(path, base_url=BASE).close()
    login_form = web.get("/auth/login", base_url=BASE).get_data(as_text=True)
    assert web.post("/auth/login", base_url=BASE, data={"login": "x"}).status_code == 400  # no CSRF token
    assert web.post("/auth/login", base_url=BASE, data={"csrf_token": "forged.token"}).status_code == 400
    # The form's own token (held in the signed cookie, no row) with nothing typed: the form again.
    assert web.post("/auth/login", base_url=BASE, data={"csrf_token": _TOKEN.search(login_form).group(1)}).status_code == 200
    for method, path in [("GET", "/fhir/Patient"), ("GET", f"/fhir/Patient/{nobody}"), ("POST", "/fhir/Patient"),
                         ("GET", "/fhir/AuditEvent"), ("GET", "/fhir/$export"), ("GET", "/fhir/metadata"),
                         ("GET", "/fhir/.well-known/smart-configuration"), ("GET", "/fhir/no/such/thing")]:
        api.open(path, method=method, base_url=BASE, json={"resourceType": "Patient"} if method == "POST" else None,
                 headers={"Prefer": "respond-async"})
    assert api.get("/fhir/Patient", base_url=BASE, headers={"Authorization": "Bearer "}).status_code == 401
    assert api.post("/auth/token", base_url=BASE, data={"grant_type": "client_credentials"}).status_code == 401
    assert api.post("/auth/token", base_url=BASE, json={}).status_code == 400
    assert _counts(store) == before
