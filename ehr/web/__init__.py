"""The service's home page; the clinic workspace and health book come as their own blueprints."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

bp = Blueprint("web", __name__)


@bp.get("/")
def home() -> str:
    """The two front doors (clinic, health book) and the API; in development, where the demo logins are."""
    return render_template("home.html", demo=current_app.config.get("EHR_ENV") == "development")


@bp.get("/healthz")
def healthz() -> tuple[dict[str, str], int]:
    return {"status": "ok"}, 200
