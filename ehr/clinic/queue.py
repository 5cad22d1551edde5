"""Today's list of the facility: its visits that started today (Vietnam time), by state."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import render_template

from ehr.auth import clock
from ehr.auth.current import login_required
from ehr.clinic import bp, common
from ehr.fhir import jsonio
from ehr.services import search

STATES = {"planned": "waiting", "arrived": "waiting", "triaged": "waiting", "in-progress": "in-progress", "onleave": "in-progress",
          "finished": "finished", "cancelled": "finished"}


@bp.get("/")
@login_required(kind="staff", roles=common.STAFF)
def today() -> str:
    ctx = common.ctx()
    day = clock.today()
    # Started today (in the clinic's zone), ended or not: `sa` yesterday keeps the start on or after
    # today's midnight, `lt` tomorrow before the next one; a plain `date=today` would need an end.
    params = [("service-provider", f"Organization/{ctx.organization}"), ("date", f"sa{day - timedelta(days=1)}"),
              ("date", f"lt{day + timedelta(days=1)}"), ("_count", "200"),
              ("_include", "Encounter:subject"), ("_sort", "date")]
    page = search.search(common.store(), ctx, "Encounter", params)
    patients = {v_.logical_id: jsonio.loads_stored(v_.body or b"{}") for v_, mode in page.entries if v_.resource_type == "Patient"}
    groups: dict[str, list[dict[str, Any]]] = {"waiting": [], "in-progress": [], "finished": []}
    for version, mode in page.entries:
        if mode != "match":
            continue
        enc = jsonio.loads_stored(version.body or b"{}")
        pid = ((enc.get("subject") or {}).get("reference") or "/").split("/", 1)[1]
        groups[STATES.get(enc.get("status", ""), "waiting")].append({"encounter": enc, "patient": patients.get(pid, {}), "patient_id": pid})
    return render_template("clinic/today.html", groups=groups, common=common)
