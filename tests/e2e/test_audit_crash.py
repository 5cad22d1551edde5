"""Audit completeness across a crash: every response that carried patient data, received before
the whole server (master, workers, job runner) was killed with SIGKILL, has its committed record."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest
from sqlalchemy import select

from e2e.conftest import start_gunicorn, stop_gunicorn
from ehr.store.schema import audit_log
from fhir_helpers import patient

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("relay", [False, True], ids=["workers-commit", "through-the-relay"])
def test_records_of_delivered_reads_survive_kill_9(app, app_config, store, tmp_path, relay):
    """Without the job runner each worker commits its records; with it, they go through its relay."""
    socket_path = tmp_path / "relay.sock"
    proc, server = start_gunicorn(app_config, tmp_path / "gunicorn.log", workers=3, EHR_JOB_RUNNER="1" if relay else "0",
                                  EHR_AUDIT_RELAY=str(socket_path))
    try:
        if relay:
            deadline = time.monotonic() + 30
            while not socket_path.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert socket_path.exists(), "the job runner did not open its audit relay"
        with server.client() as http:
            ids = [http.post("/fhir/Patient", json=patient(f"Võ Văn Canary{n}")).json()["id"] for n in range(20)]
        delivered: list[tuple[str, str]] = []  # (request id, patient id) of 200 responses
        lock = threading.Lock()
        stop = threading.Event()

        def reader(offset: int) -> None:
            with httpx.Client(base_url=server.base, timeout=5) as http:
                n = offset
                while not stop.is_set():
                    rid, pid = uuid.uuid4().hex, ids[n % len(ids)]
                    path = f"/fhir/Patient/{pid}" if n % 2 else f"/fhir/Patient?_id={pid}"
                    try:
                        response = http.get(path, headers={"X-Request-ID": rid})
                    except httpx.HTTPError:
                        return  # the server is gone
                    if response.status_code == 200 and b"Canary" in response.content:
                        with lock:
                            delivered.append((rid, pid))
                    n += 1

        threads = [threading.Thread(target=reader, args=(i * 7,)) for i in range(6)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        stop_gunicorn(proc, kill=True)  # SIGKILL to the whole process group, mid-traffic
        stop.set()
        for t in threads:
            t.join()
    finally:
        stop_gunicorn(proc, kill=True)
    assert len(delivered) > 50, len(delivered)
    with store.engine.connect() as conn:
        rows = {r.request_id: r for r in conn.execute(select(audit_log.c.request_id, audit_log.c.compartment, audit_log.c.outcome))}
    missing = [rid for rid, pid in delivered if rid not in rows or rows[rid].compartment != pid or rows[rid].outcome != "success"]
    print(f"\n{len(delivered)} delivered responses, {len(missing)} without a committed audit record")
    assert missing == []
