"""A small OpenID Connect provider for tests: discovery, JWKS, an authorize endpoint that
approves at once, and a token endpoint returning an RS256 ID token signed with joserfc.

`mode` bends one thing of the next ID token (a wrong nonce, issuer, audience or key, an expired
token, a missing or malformed national-ID claim) so the relying party's checks can be tested.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from typing import Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

CLIENT_ID = "ehr-test-client"
CLIENT_SECRET = secrets.token_urlsafe(24)


class Provider:
    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "idp-1", "use": "sig", "alg": "RS256"})
        self.impostor = RSAKey.generate_key(2048, parameters={"kid": "idp-1"})  # same kid, another key
        self.national_id: Any = None
        self.mode = "ok"
        self._codes: dict[str, dict[str, str]] = {}
        self._server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.issuer = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        handler = {
            "/.well-known/openid-configuration": self.discovery, "/jwks": self.jwks, "/authorize": self.authorize, "/token": self.token,
        }.get(request.path)
        response = handler(request) if handler else Response("not found", 404)
        return response(environ, start_response)

    def discovery(self, _request: Request) -> Response:
        return _json({
            "issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize", "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks", "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
        })

    def jwks(self, _request: Request) -> Response:
        return _json({"keys": [self.key.as_dict(private=False)]})

    def authorize(self, request: Request) -> Response:
        args = request.args
        assert args["client_id"] == CLIENT_ID and args["response_type"] == "code" and "openid" in args["scope"].split()
        assert args["code_challenge_method"] == "S256" and args["nonce"] and args["state"]
        code = secrets.token_urlsafe(16)
        self._codes[code] = {"nonce": args["nonce"], "redirect_uri": args["redirect_uri"], "challenge": args["code_challenge"]}
        return Response(status=302, headers={"Location": f"{args['redirect_uri']}?{urlencode({'code': code, 'state': args['state']})}"})

    def token(self, request: Request) -> Response:
        auth = request.authorization
        form = request.form
        grant = self._codes.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if (grant is None or auth is None or (auth.username, auth.password) != (CLIENT_ID, CLIENT_SECRET)
                or form.get("redirect_uri") != grant["redirect_uri"] or challenge != grant["challenge"]):
            return _json({"error": "invalid_grant"}, 400)
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.issuer, "sub": "citizen-42", "aud": CLIENT_ID, "iat": now, "exp": now + 300, "nonce": grant["nonce"]}
        if self.national_id is not None:
            claims["national_id"] = self.national_id
        key = self.key
        if self.mode == "wrong-nonce":
            claims["nonce"] = "not-the-nonce-you-sent"
        elif self.mode == "wrong-issuer":
            claims["iss"] = "https://impostor.example"
        elif self.mode == "wrong-audience":
            claims["aud"] = "some-other-client"
        elif self.mode == "foreign-audience-naming-us-azp":
            claims.update(aud="some-other-client", azp=CLIENT_ID)
        elif self.mode == "expired":
            claims.update(iat=now - 3600, exp=now - 1800)
        elif self.mode == "bad-signature":
            key = self.impostor
        id_token = jwt.encode({"alg": "RS256", "kid": "idp-1"}, claims, key)
        return _json({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300, "id_token": id_token})


def _json(body: dict[str, Any], status: int = 200) -> Response:
    import json

    return Response(json.dumps(body), status=status, content_type="application/json")
