"""Hospital systems for tests: key pairs, registration, signed client assertions, tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from ehr.services import clients
from ehr.services.context import AccessContext

TOKEN_URL = "http://localhost/auth/token"  # the test client's host
OPS = AccessContext.operator("test")


@dataclass
class Hospital:
    client_id: str
    organization: str
    key: Any
    alg: str

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}

    def assertion(self, header: dict[str, Any] | None = None, key: Any = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.client_id, "sub": self.client_id, "aud": TOKEN_URL, "exp": now + 240, "jti": uuid.uuid4().hex, **claims}
        body = {k: v for k, v in body.items() if v is not None}
        head = {"alg": self.alg, "kid": self.key.kid, "typ": "JWT", **(header or {})}
        return jwt.encode(head, body, key or self.key, algorithms=[head["alg"]])


def new_key(alg: str = "RS384", kid: str | None = None) -> Any:
    params = {"kid": kid or uuid.uuid4().hex[:12]}
    return RSAKey.generate_key(2048, parameters=params) if alg == "RS384" else ECKey.generate_key("P-384", parameters=params)


def register(store: Any, client_id: str, organization: str, scopes: list[str], alg: str = "RS384", purpose: str = "TREAT") -> Hospital:
    hospital = Hospital(client_id, organization, new_key(alg), alg)
    clients.register(store, OPS, client_id, organization, hospital.jwks, scopes, purpose)
    return hospital


def unsigned(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None = None) -> str:
    """A JWT built by hand: `alg: none`, or HS256 with `secret` (the classic public-key-as-secret forgery)."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()) if secret is not None else ""
    return f"{signing_input}.{signature}"


def token_request(client: FlaskClient, assertion: str, scope: str = "system/*.rs", grant: str = "client_credentials") -> Any:
    return client.post("/auth/token", data={
        "grant_type": grant, "scope": scope,
        "client_assertion_type": clients.ASSERTION_TYPE, "client_assertion": assertion,
    })


def token(client: FlaskClient, hospital: Hospital, scope: str = "system/*.rs") -> str:
    response = token_request(client, hospital.assertion(), scope)
    assert response.status_code == 200, response.get_json()
    return str(response.get_json()["access_token"])


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}", "Accept": "application/fhir+json", "Content-Type": "application/fhir+json"}
