"""Cost bounds and rate limits of every request (issue 20, finding 7).

- Cost bounds (ehr.services.costs) and the PostgreSQL statement timeout are set for the length
  of each request; the CLI and the job runner never see them.
- Rate limits (Flask-Limiter, fixed windows): on the FHIR API and the token endpoint per client
  (a hash of the bearer token; "anonymous" without one) and source address together, and per
  source address; on sign-in (password, second factor, activation) per source and per (source,
  login name) pair; the clinic's look-ups by typed national ID (find, check-in, break-glass) per
  staff account. The counters live in Redis when `EHR_RATELIMIT_STORAGE=redis://...`, which
  every worker and host shares; `memory://` keeps them per worker process and is accepted in
  development only. A breach answers 429 with Retry-After (ehr.api.errors).

Keys hold keyed hashes only (the source address through the audit trail's source hash, the login
name through the throttle's name hash): Flask-Limiter logs the key of a breach.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

from flask import Flask, Response, current_app, g, request, session
from flask_limiter import ApplicationLimit, Limiter
from flask_limiter.errors import RateLimitExceeded

from ehr.services import costs
from ehr.settings import ConfigError
from ehr.store import engine as engine_setup

_SIGN_IN = {"auth.login", "auth.totp_check", "auth.totp_enrol", "auth.activate"}
# The clinic's look-ups by a typed national ID: a desk checks in a few patients a minute, not 30 a second.
_LOOKUP = {"clinic.check_in", "clinic.check_in_with_consent", "clinic.break_glass_by_cccd", "clinic.find"}
_DEFAULTS = {
    "EHR_RATELIMIT_API": "1200 per minute",  # per (client, source)
    "EHR_RATELIMIT_API_SOURCE": "3000 per minute",  # per source, all clients together
    "EHR_RATELIMIT_SIGNIN": "30 per minute",  # sign-in form posts per source
    "EHR_RATELIMIT_SIGNIN_PAIR": "10 per minute",  # per (source, login name)
    "EHR_RATELIMIT_LOOKUP": "20 per minute; 300 per day",  # clinic patient look-ups per staff account
}


def _int(app: Flask, name: str, default: int) -> int:
    try:
        value = int(app.config.get(name) or default)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a whole number") from None
    if value < 1:
        raise ConfigError(f"{name} must be at least 1")
    return value


def request_costs(app: Flask) -> costs.Costs:
    d = costs.Costs()
    return costs.Costs(
        text_words=_int(app, "EHR_SEARCH_TEXT_MAX_WORDS", d.text_words),
        string_chars=_int(app, "EHR_SEARCH_STRING_MAX_CHARS", d.string_chars),
        bundle_entries=_int(app, "EHR_MAX_BUNDLE_ENTRIES", d.bundle_entries),
        bundle_reads=_int(app, "EHR_MAX_BUNDLE_READS", d.bundle_reads),
        includes=_int(app, "EHR_MAX_INCLUDES", d.includes),
        response_bytes=_int(app, "EHR_MAX_RESPONSE_BYTES", d.response_bytes),
    )


def _is_api() -> bool:
    return request.path == "/fhir" or request.path.startswith("/fhir/") or request.endpoint == "auth.token"


def _source() -> str:
    from ehr.api.access import source_hash

    return source_hash().hex()


def _api_key() -> str:
    scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
    client = hashlib.sha256(token.strip().encode()).hexdigest()[:32] if scheme.lower() == "bearer" and token.strip() else "anonymous"
    return f"{client}:{_source()}"


def _sign_in_key() -> str:
    from ehr.services import logins

    typed = request.form.get("login")
    if typed is not None:
        name = logins.login_key(current_app.extensions["ehr.store"], typed[:512]).hex()
    else:  # the second factor: the account of the pending challenge
        pending = session.get("pending")
        name = str(pending.get("aid")) if isinstance(pending, dict) else "-"
    return f"{_source()}:{name}"


def _lookup_key() -> str:
    return f"{session.get('aid') or 'anonymous'}:{_source()}"


def _not_lookup() -> bool:
    return request.method != "POST" or request.endpoint not in _LOOKUP


def _not_api() -> bool:
    return not _is_api()


def _not_sign_in() -> bool:
    return request.method != "POST" or request.endpoint not in _SIGN_IN


def storage_uri(app: Flask) -> str:
    uri = str(app.config.get("EHR_RATELIMIT_STORAGE") or "memory://")
    if not uri.startswith(("redis://", "rediss://", "redis+unix://", "memory://")):
        raise ConfigError("EHR_RATELIMIT_STORAGE must be redis://HOST:PORT/DB (or memory:// in development)")
    if uri.startswith("memory://") and app.config.get("EHR_ENV") == "production":
        # Memory counters are per worker process: N workers would allow N times the limit.
        raise ConfigError("production needs a shared rate-limit storage: set EHR_RATELIMIT_STORAGE=redis://HOST:PORT/DB")
    return uri


def _limit(app: Flask, name: str) -> str:
    return str(app.config.get(name) or _DEFAULTS[name])


def install(app: Flask) -> Limiter:
    request_costs(app)  # refuse a bad setting at start-up, not at the first request
    _int(app, "EHR_STATEMENT_TIMEOUT_MS", 15_000)

    @app.before_request
    def _bound() -> None:
        timeout_ms = _int(app, "EHR_STATEMENT_TIMEOUT_MS", 15_000)
        g.ehr_cost_tokens = (costs.enter(request_costs(app)), engine_setup.statement_timeout_ms.set(timeout_ms))

    @app.teardown_request
    def _unbound(_exc: BaseException | None) -> None:
        tokens = g.pop("ehr_cost_tokens", None)
        if tokens is not None:
            costs.leave(tokens[0])
            engine_setup.statement_timeout_ms.reset(tokens[1])

    @app.after_request
    def _response_size(response: Response) -> Response:
        # The safety net behind the services' own checks: no answer of the API is larger than the
        # bound (streamed export files are exempt: they are files, downloaded by design).
        if not _is_api() or response.is_streamed or response.direct_passthrough:
            return response
        if request.method not in ("GET", "HEAD") and not request.path.endswith(("/_search", "/$everything")):
            return response  # a write's answer is never thrown away after it committed
        size = response.calculate_content_length()
        limit = costs.current().response_bytes
        if size is not None and size > limit:
            from ehr.api.http import outcome_response
            from ehr.services.search import too_large

            exc = too_large(limit)
            return outcome_response(exc.issues, exc.status)
        return response

    enabled = str(app.config.get("EHR_RATELIMIT_ENABLED", "true")).strip().lower() not in ("0", "false", "no", "off")
    app.config["RATELIMIT_ENABLED"] = enabled
    limiter = Limiter(
        key_func=_source,
        storage_uri=storage_uri(app) if enabled else "memory://",
        strategy="fixed-window",
        key_prefix="ehr",
        application_limits=[
            ApplicationLimit(_limit(app, "EHR_RATELIMIT_API"), key_function=_api_key, scope="api", exempt_when=_not_api),
            ApplicationLimit(_limit(app, "EHR_RATELIMIT_API_SOURCE"), key_function=_source, scope="api-source", exempt_when=_not_api),
            ApplicationLimit(_limit(app, "EHR_RATELIMIT_SIGNIN"), key_function=_source, scope="signin", exempt_when=_not_sign_in),
            ApplicationLimit(_limit(app, "EHR_RATELIMIT_SIGNIN_PAIR"), key_function=_sign_in_key, scope="signin-pair",
                             exempt_when=_not_sign_in),
            ApplicationLimit(_limit(app, "EHR_RATELIMIT_LOOKUP"), key_function=_lookup_key, scope="lookup", exempt_when=_not_lookup),
        ],
    )
    limiter.init_app(app)
    app.extensions["ehr.limiter"] = limiter
    return limiter


def retry_after(exc: RateLimitExceeded) -> int:
    """Seconds until the breached window resets (at least 1)."""
    limiter: Limiter | None = current_app.extensions.get("ehr.limiter")
    current = limiter.current_limit if limiter is not None else None
    window = int(exc.limit.limit.get_expiry())
    if current is not None:
        # reset_at is rounded up to the next whole second: never announce more than the window.
        return max(1, min(window, math.ceil(current.reset_at - time.time())))
    return max(1, window)


def is_throttled(exc: Any) -> bool:
    return isinstance(exc, RateLimitExceeded)
