"""Security headers on every response: pages, the FHIR API, static files, error pages, 404s.

- `Content-Security-Policy` (`CSP` below): scripts, styles and images only from this origin, no
  inline script, no plugins, no `<base>`, forms post only here, never framed. The one inline style
  allowed is a page's own `inline_style(...)` block (the health book's standalone pages, which must
  keep their look when saved and opened offline): its SHA-256 is added to `style-src` of that
  response only. Downloaded files opened from disk carry no header and need none.
- `X-Frame-Options: DENY` (browsers without `frame-ancestors`), `X-Content-Type-Options: nosniff`,
  `Referrer-Policy: no-referrer` (URLs hold patient ids; the CSRF check needs no Referer).
- `Strict-Transport-Security` in production only (development serves plain HTTP on loopback).
- `Cache-Control: no-store` on everything except static files and the public, patient-free
  discovery documents that set their own caching (`PUBLIC_CACHEABLE`).
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from pathlib import Path

from flask import Flask, Response, current_app, g, request
from markupsafe import Markup

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'{styles}; img-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HSTS = "max-age=63072000; includeSubDomains"
# Public documents without patient data that may be cached (they set `max-age` themselves).
PUBLIC_CACHEABLE = frozenset({"fhir.smart_configuration", "fhir.openapi"})


@lru_cache(maxsize=16)
def _stylesheet(folder: str, name: str) -> str:
    return (Path(folder) / name).read_text("utf-8")


def inline_style(name: str) -> Markup:
    """`<style>` holding the static stylesheet `name`, allowed by its hash in this response's CSP."""
    text = _stylesheet(str(current_app.static_folder), name)
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    hashes: list[str] = g.setdefault("csp_style_hashes", [])
    if digest not in hashes:
        hashes.append(digest)
    return Markup("<style>") + Markup(text) + Markup("</style>")


def install(app: Flask) -> None:
    """Register before every other after-request hook, so this one runs last and has the final word."""
    production = app.config.get("EHR_ENV") == "production"
    app.jinja_env.globals["inline_style"] = inline_style

    @app.after_request
    def _security_headers(response: Response) -> Response:
        styles = "".join(f" 'sha256-{h}'" for h in g.get("csp_style_hashes", ()))
        headers = response.headers
        headers["Content-Security-Policy"] = CSP.format(styles=styles)
        headers["X-Frame-Options"] = "DENY"
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "no-referrer"
        if production:
            headers["Strict-Transport-Security"] = HSTS
        static = request.endpoint == "static" or request.path.startswith((app.static_url_path or "/static") + "/")
        if not static and not (request.endpoint in PUBLIC_CACHEABLE and "Cache-Control" in headers):
            headers["Cache-Control"] = "no-store"
        return response
