"""SMART Backend Services: every rejection path of the token endpoint, and bearer enforcement."""

from __future__ import annotations

import time

import pytest

from access_helpers import TOKEN_URL, bearer, new_key, register, token, token_request, unsigned
from ehr.services import clients


@pytest.fixture
def hospital(store):
    return register(store, "hospital-a", "org-a", ["system/*.rs", "system/Patient.cruds"])


def _rejected(response, error: str = "invalid_client", status: int = 401) -> None:
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"] == error
    assert response.headers["Cache-Control"] == "no-store"


def test_token_is_short_lived_opaque_and_not_cached(client, hospital):
    response = token_request(client, hospital.assertion(), "system/Patient.rs system/Observation.rs")
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["token_type"] == "bearer" and 0 < doc["expires_in"] <= 300
    assert doc["scope"] == "system/Patient.rs system/Observation.rs"
    assert response.headers["Cache-Control"] == "no-store" and response.headers["Pragma"] == "no-cache"
    assert doc["access_token"].count(".") == 0  # opaque: nothing to decode or forge


def test_es384_clients_are_accepted(client, store):
    hospital = register(store, "hospital-ec", "org-ec", ["system/*.rs"], alg="ES384")
    assert token(client, hospital)


@pytest.mark.parametrize("case", [
    "bad-signature", "other-client-key", "wrong-aud", "expired", "exp-too-far", "nbf-future", "no-jti", "iss-not-sub",
    "unknown-kid", "jku-header", "x5u-header", "alg-none", "hs256-public-key", "unknown-client", "not-a-jwt",
])
def test_forged_assertions_are_refused(client, store, hospital, case):
    other = register(store, "hospital-b", "org-b", ["system/*.rs"])
    now = int(time.time())
    claims = {"iss": hospital.client_id, "sub": hospital.client_id, "aud": TOKEN_URL, "exp": now + 240, "jti": "j" * 16}
    assertion = {
        "bad-signature": lambda: hospital.assertion(key=new_key(kid=hospital.key.kid)),
        "other-client-key": lambda: hospital.assertion(header={"kid": other.key.kid}, key=other.key),
        "wrong-aud": lambda: hospital.assertion(aud="https://elsewhere.example/token"),
        "expired": lambda: hospital.assertion(exp=now - 120),
        "exp-too-far": lambda: hospital.assertion(exp=now + 3600),
        "nbf-future": lambda: hospital.assertion(nbf=now + 600),
        "no-jti": lambda: hospital.assertion(jti=None),
        "iss-not-sub": lambda: hospital.assertion(sub="someone-else"),
        "unknown-kid": lambda: hospital.assertion(header={"kid": "nope"}),
        "jku-header": lambda: hospital.assertion(header={"jku": "https://attacker.example/jwks"}),
        "x5u-header": lambda: hospital.assertion(header={"x5u": "https://attacker.example/cert"}),
        "alg-none": lambda: unsigned({"alg": "none", "typ": "JWT"}, claims),
        "hs256-public-key": lambda: unsigned({"alg": "HS256", "typ": "JWT"}, claims, hospital.key.as_pem(private=False)),
        "unknown-client": lambda: unsigned({"alg": "RS384"}, {**claims, "iss": "ghost", "sub": "ghost"}),
        "not-a-jwt": lambda: "definitely.not",
    }[case]()
    _rejected(token_request(client, assertion))


def test_replayed_jti_is_refused(client, hospital):
    assertion = hospital.assertion()
    assert token_request(client, assertion).status_code == 200
    _rejected(token_request(client, assertion))


def test_grant_type_and_scopes(client, hospital):
    _rejected(token_request(client, hospital.assertion(), grant="password"), "unsupported_grant_type", 400)
    _rejected(token_request(client, hospital.assertion(), "system/Observation.cruds"), "invalid_scope", 400)
    _rejected(token_request(client, hospital.assertion(), "system/Patient.dus"), "invalid_scope", 400)  # letters out of order
    granted = token_request(client, hospital.assertion(), "system/Observation.rs system/Observation.c").get_json()["scope"]
    assert granted == "system/Observation.rs"  # the server grants the allowed subset


def test_scopes_are_enforced_per_interaction(client, hospital):
    value = token(client, hospital, "system/Patient.rs")
    assert client.get("/fhir/Patient", headers=bearer(value)).status_code == 200
    assert client.get("/fhir/Observation", headers=bearer(value)).status_code == 403
    created = client.post("/fhir/Patient", headers=bearer(value), data='{"resourceType":"Patient"}')
    assert created.status_code == 403


def test_bad_bearer_tokens_are_401(client, hospital):
    for header in ("Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer ", f"Bearer {hospital.assertion()}"):
        response = client.get("/fhir/Patient", headers={"Authorization": header})
        assert response.status_code == 401 and "Bearer" in response.headers["WWW-Authenticate"]


def test_disabling_a_client_revokes_its_tokens_at_once(client, store, hospital):
    value = token(client, hospital)
    assert client.get("/fhir/Patient", headers=bearer(value)).status_code == 200
    clients.set_active(store, clients.AccessContext.operator("t"), hospital.client_id, False)
    assert client.get("/fhir/Patient", headers=bearer(value)).status_code == 401
    _rejected(token_request(client, hospital.assertion()))


def test_tokens_expire(client, store, hospital):
    minted = clients.mint(store, clients.AccessContext.operator("t"), hospital.client_id, ["system/Patient.rs"], seconds=1)
    assert client.get("/fhir/Patient", headers=bearer(minted.access_token)).status_code == 200
    time.sleep(1.1)
    assert client.get("/fhir/Patient", headers=bearer(minted.access_token)).status_code == 401


def test_required_mode_refuses_anonymous_requests(secured):
    web = secured.test_client()
    response = web.get("/fhir/Patient")
    assert response.status_code == 401 and response.get_json()["issue"][0]["code"] == "login"
    assert web.get("/fhir/metadata").status_code == 200
    discovery = web.get("/fhir/.well-known/smart-configuration").get_json()
    assert discovery["token_endpoint"].endswith("/auth/token")
    assert discovery["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
