"""Authentication edges: the OAuth token endpoint for hospital systems (and, for people, the web
login pages)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("auth", __name__, url_prefix="/auth")

from ehr.auth import token  # noqa: E402,F401  (registers the routes)
