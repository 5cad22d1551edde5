"""Hospital systems: SMART Backend Services (OAuth 2.0 client credentials with a signed JWT).

A client is registered by an operator with its organization, its public keys (JWKS) and the
scopes it may ever hold. It asks for a token with a `private_key_jwt` client assertion signed
RS384 or ES384 (never `none`, never HS256: the keys it registered are public). The assertion must
name the client as `iss` and `sub`, the token endpoint as `aud`, expire within five minutes, and
carry a `jti` never seen before. The access token is an opaque random value, kept only as its
SHA-256, valid for at most 300 s; every API request looks it up, so disabling a client takes
effect on its next request.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import delete, select, update

from ehr.services import auditing
from ehr.services.context import AccessContext
from ehr.services.policy import parse_scope
from ehr.store import access
from ehr.store.access import INTERNAL
from ehr.store.keys import now_us
from ehr.store.runtime import Store
from ehr.store.schema import access_tokens, api_clients

ALGORITHMS = ("RS384", "ES384")
TOKEN_SECONDS = 300
MAX_ASSERTION_SECONDS = 300
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{3,64}$")
_PURPOSE = re.compile(r"^[A-Z]{2,16}$")
_FORBIDDEN_HEADERS = ("jku", "x5u", "jwk", "x5c", "crit")  # keys come from the registration only


class OAuthError(Exception):
    """An RFC 6749 error response: `error` code, description, HTTP status (400 or 401)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(error)
        self.error, self.description, self.status = error, description, status


class ClientError(ValueError):
    """An operator's registration input is not acceptable."""


@dataclass(frozen=True)
class Token:
    access_token: str
    expires_in: int
    scope: str


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def covered(requested: str, registered: str) -> bool:
    """Does a registered scope include a requested one (same context, type, letters a subset)?"""
    want, have = parse_scope(requested), parse_scope(registered)
    if want is None or have is None or want[0] != have[0]:
        return False
    if have[1] != "*" and have[1] != want[1]:
        return False
    return set(want[2]) <= set(have[2])


def _check_jwks(jwks: Any) -> KeySet:
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise ClientError("the JWKS must be an object with a non-empty 'keys' array")
    for key in jwks["keys"]:
        if not isinstance(key, dict) or key.get("kty") not in ("RSA", "EC"):
            raise ClientError("only RSA and EC public keys are accepted")
        if any(part in key for part in ("d", "p", "q", "dp", "dq", "qi")):
            raise ClientError("the JWKS holds a private key: register the public keys only")
        if not key.get("kid"):
            raise ClientError("every key needs a 'kid'")
    try:
        return KeySet.import_key_set(jwks)
    except (JoseError, ValueError, TypeError) as exc:
        raise ClientError(f"the JWKS cannot be read ({type(exc).__name__})") from None


def register(store: Store, ctx: AccessContext, client_id: str, organization_id: str, jwks: Any, scopes: list[str], purpose: str = "TREAT") -> None:
    if not _CLIENT_ID.match(client_id):
        raise ClientError("client id: 3-64 letters, digits, '.', '_', ':' or '-'")
    bad = [s for s in scopes if (p := parse_scope(s)) is None or p[0] != "system"]
    if bad or not scopes:
        raise ClientError("scopes must be SMART v2 system scopes such as system/Patient.rs or system/*.cruds")
    if not _PURPOSE.match(purpose):
        raise ClientError("purpose of use is a v3 ActReason code such as TREAT, HPAYMT or HRESCH")
    _check_jwks(jwks)
    with store.writing(INTERNAL) as uow:
        if access.client(uow, client_id) is not None:
            raise ClientError("a client with this id is already registered")
        access.insert_client(uow, dict(
            client_id=client_id, organization_id=organization_id, jwks=json.dumps(jwks), scopes=" ".join(scopes),
            purpose=purpose, active=True, created_at=now_us(),
        ))
        auditing.queued(uow, store, ctx, "client.register", resource_type="Organization", logical_id=organization_id)


def set_active(store: Store, ctx: AccessContext, client_id: str, active: bool) -> bool:
    with store.writing(INTERNAL) as uow:
        result = uow.execute(update(api_clients).where(api_clients.c.client_id == client_id).values(active=active))
        if result.rowcount and not active:
            uow.execute(delete(access_tokens).where(access_tokens.c.client_id == client_id))
        auditing.queued(uow, store, ctx, "client.enable" if active else "client.disable", outcome="success" if result.rowcount else "failure")
    return bool(result.rowcount)


def _grant(requested: str, registered: list[str]) -> list[str]:
    wanted = requested.split()
    if not wanted:
        raise OAuthError("invalid_scope", "ask for at least one scope, e.g. system/Patient.rs")
    granted = [s for s in dict.fromkeys(wanted) if any(covered(s, r) for r in registered)]
    if not granted:
        raise OAuthError("invalid_scope", "none of the requested scopes is allowed for this client")
    return granted


def _issue(store: Store, client_id: str, scopes: list[str], seconds: int, minted_by: str | None) -> Token:
    token = secrets.token_urlsafe(32)
    now = now_us()
    with store.writing(INTERNAL) as uow:
        uow.execute(delete(access_tokens).where(access_tokens.c.expires_at < now))
        uow.queue(access_tokens, dict(
            token_hash=_hash(token), client_id=client_id, scopes=" ".join(scopes), expires_at=now + seconds * 1_000_000,
            created_at=now, minted_by=minted_by,
        ))
    return Token(token, seconds, " ".join(scopes))


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _unverified(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims before verification: only to pick the algorithm check and the client."""
    try:
        head, body = assertion.split(".")[:2]
        header, claims = json.loads(_b64(head)), json.loads(_b64(body))
    except (ValueError, TypeError):
        raise OAuthError("invalid_client", "the client assertion is not a JWT", 401) from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise OAuthError("invalid_client", "the client assertion is not a JWT", 401)
    return header, claims


def exchange(store: Store, form: dict[str, str], token_url: str, ctx: AccessContext) -> Token:
    """The token endpoint: client credentials grant with a JWT client assertion."""
    if form.get("grant_type") != "client_credentials":
        raise OAuthError("unsupported_grant_type", "only grant_type=client_credentials is supported")
    if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
        raise OAuthError("invalid_client", "authenticate with a private_key_jwt client assertion", 401)
    assertion = form["client_assertion"]
    header, unverified = _unverified(assertion)
    if header.get("alg") not in ALGORITHMS:
        raise OAuthError("invalid_client", "the assertion must be signed with RS384 or ES384", 401)
    if any(name in header for name in _FORBIDDEN_HEADERS):
        raise OAuthError("invalid_client", "key-locating headers (jku, x5u, jwk, x5c) are not accepted", 401)
    client_id = str(unverified.get("iss") or "")
    with store.reading(INTERNAL) as uow:
        registered = access.client(uow, client_id) if _CLIENT_ID.match(client_id) else None
    if registered is None or not registered["active"]:
        raise OAuthError("invalid_client", "unknown or disabled client", 401)
    try:
        token = jwt.decode(assertion, KeySet.import_key_set(json.loads(registered["jwks"])), algorithms=list(ALGORITHMS))
    except (JoseError, ValueError, TypeError):
        raise OAuthError("invalid_client", "the client assertion signature does not verify with the registered keys", 401) from None
    now = now_us() // 1_000_000
    claims = token.claims
    registry = jwt.JWTClaimsRegistry(
        now=now, leeway=30,
        iss={"essential": True, "value": client_id}, sub={"essential": True, "value": client_id},
        aud={"essential": True, "value": token_url}, exp={"essential": True}, jti={"essential": True},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise OAuthError("invalid_client", f"the client assertion is not acceptable ({exc.error})", 401) from None
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp > now + MAX_ASSERTION_SECONDS + 30:
        raise OAuthError("invalid_client", "the client assertion must expire within five minutes", 401)
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 8 <= len(jti) <= 256:
        raise OAuthError("invalid_client", "the client assertion needs a jti of 8 to 256 characters", 401)
    with store.writing(INTERNAL) as uow:
        fresh = access.use_jti(uow, client_id, jti, (exp + 60) * 1_000_000, now_us())
    if not fresh:
        raise OAuthError("invalid_client", "this client assertion was already used (jti replay)", 401)
    granted = _grant(form.get("scope") or "", registered["scopes"].split())
    issued = _issue(store, client_id, granted, TOKEN_SECONDS, None)
    auditing.event(store, context_of(registered, granted, ctx.request_id, ctx.source_hash), "token.issue", "success")
    return issued


def mint(store: Store, ctx: AccessContext, client_id: str, scopes: list[str], seconds: int = TOKEN_SECONDS) -> Token:
    """An operator's token for a registered client (their own checks and scripts); audited."""
    if not 1 <= seconds <= TOKEN_SECONDS:
        raise ClientError(f"a token lives at most {TOKEN_SECONDS} seconds")
    with store.reading(INTERNAL) as uow:
        registered = access.client(uow, client_id)
    if registered is None or not registered["active"]:
        raise ClientError("unknown or disabled client")
    try:
        granted = _grant(" ".join(scopes), registered["scopes"].split())
    except OAuthError as exc:
        raise ClientError(exc.description) from None
    issued = _issue(store, client_id, granted, seconds, ctx.principal)
    auditing.event(store, ctx, "token.mint", "success", resource_type="Organization", logical_id=registered["organization_id"])
    return issued


def context_of(client: dict[str, Any], scopes: list[str], request_id: str | None, source_hash: bytes | None) -> AccessContext:
    return AccessContext(
        principal=f"system:{client['client_id']}", kind="system", organization=client["organization_id"], scopes=frozenset(scopes),
        request_id=request_id, purpose=client["purpose"], source_hash=source_hash,
    )


def resolve(store: Store, token: str, request_id: str | None, source_hash: bytes | None) -> AccessContext | None:
    """The context of a bearer token, or None when it is unknown, expired or its client disabled."""
    if not token or len(token) > 512:
        return None
    stmt = (
        select(access_tokens.c.scopes, access_tokens.c.expires_at, api_clients)
        .join(api_clients, api_clients.c.client_id == access_tokens.c.client_id)
        .where(access_tokens.c.token_hash == _hash(token))
    )
    with store.reading(INTERNAL) as uow:
        row = uow.execute(stmt).mappings().first()
    if row is None or row["expires_at"] <= now_us() or not row["active"]:
        return None
    return context_of(dict(row), row["scopes"].split(), request_id, source_hash)
