"""Bulk export end to end through gunicorn: the server (master, workers, job runner) is killed
with SIGKILL in the middle of an export, restarted, and the export completes with every resource
exactly once; the export folder holds no plaintext."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from e2e.conftest import start_gunicorn, stop_gunicorn
from ehr.services import demo
from ehr.services.context import AccessContext
from ehr.store.schema import resources
from ehr.synthetic.generator import Generator

pytestmark = pytest.mark.e2e
SLOW_EXPORT = {"EHR_EXPORT_BATCH": "3", "EHR_JOB_LEASE_SECONDS": "2", "EHR_JOB_POLL_SECONDS": "0.2"}


def _wait(http, status_url, until, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = http.get(status_url)
        if until(response):
            return response
        time.sleep(0.05)
    raise AssertionError("export did not reach the expected state")


def test_export_survives_a_killed_server(app, app_config, store, tmp_path):
    report = demo.load(store, AccessContext.operator("test"), 12, seed=4)
    log = tmp_path / "gunicorn.log"
    proc, server = start_gunicorn(app_config, log, workers=2, **SLOW_EXPORT)
    try:
        with server.client() as http:
            kick = http.get("/fhir/$export", headers={"Prefer": "respond-async", "Accept": "application/fhir+json"})
            assert kick.status_code == 202
            status_url = kick.headers["content-location"].replace(server.base, "")

            def started(r):
                return r.status_code == 202 and " 0 resources" not in r.headers.get("x-progress", " 0 resources")

            _wait(http, status_url, started)
    finally:
        stop_gunicorn(proc, kill=True)  # master, workers and runner, mid-export
    proc, server = start_gunicorn(app_config, log, workers=2, **SLOW_EXPORT)
    try:
        with server.client() as http:
            done = _wait(http, status_url, lambda r: r.status_code == 200)
            manifest = done.json()
            exported = Counter()
            ids = set()
            for item in manifest["output"]:
                lines = http.get(item["url"].replace(server.base, "")).text.splitlines()
                exported[item["type"]] += len(lines)
                ids |= {(item["type"], json.loads(line)["id"]) for line in lines}
    finally:
        stop_gunicorn(proc)
    with store.engine.connect() as conn:
        live = dict(conn.execute(select(resources.c.resource_type, func.count()).where(resources.c.deleted.is_(False)).group_by(resources.c.resource_type)).all())
    assert dict(exported) == live and sum(live.values()) == report.resources
    assert len(ids) == report.resources  # no resource twice
    folder = app.extensions["ehr.export"].directory
    raw = b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())
    canaries = [Generator(seed=4).patient_bundle(i)["entry"][0]["resource"]["name"][0]["text"] for i in range(12)]
    assert raw and b"Patient" not in raw and not [c for c in canaries if c.encode() in raw]
