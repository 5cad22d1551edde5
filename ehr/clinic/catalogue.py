"""The catalogue pickers' suggestions as JSON (drug, service and lab-test search), for staff."""

from __future__ import annotations

from typing import Any

from flask import abort, request

from ehr.auth.current import login_required
from ehr.clinic import bp, common
from ehr.services import catalogue

MAX_LIMIT = 50


@bp.get("/catalogue/<kind>")
@login_required(kind="staff", roles=common.STAFF)
def catalogue_search(kind: str) -> dict[str, Any]:
    """Items of the active catalogue version matching `q` (accent-insensitive, by code or words):
    `{"items": [...], "version": label, "system": url}`; each item has the kind's fields (drugs:
    code, name, ingredient, ingredient_code, strength, form, route, unit, registration, bhyt,
    bhyt_ratio, price; services: code, name, tier, price; labs: code, name, unit, low, high, loinc),
    decimals as strings, and `display`. `limit` (1-50, default 15)."""
    if kind not in catalogue.KINDS:
        abort(404)
    try:
        limit = min(max(int(request.args.get("limit", 15)), 1), MAX_LIMIT)
    except ValueError:
        limit = 15
    store = common.store()
    found = catalogue.search(store, kind, request.args.get("q", "")[:200], limit=limit)
    return {"items": [catalogue.item_json(item) for item in found], "version": catalogue.active_version(store, kind),
            "system": catalogue.SYSTEMS[kind]}
