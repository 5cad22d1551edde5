"""Authentication edges: the OAuth token endpoint for hospital systems, and the web login pages
for people (staff and patients), with their server-side sessions, CSRF protection and the
external identity provider for patients."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("auth", __name__, url_prefix="/auth")

from ehr.auth import oidc, token, views  # noqa: E402,F401  (registers the routes)


def install(app: Flask) -> None:
    """Sessions, CSRF and the identity provider; call after the blueprints are registered."""
    from flask import session

    from ehr.auth import csrf, sessions

    sessions.install(app)
    csrf.install(app)
    oidc.install(app)

    @app.context_processor
    def _signed_in() -> dict[str, bool]:
        # Enough to show the logout button; rights come from current_context(), never from this.
        return {"signed_in": session.get("aid") is not None}
