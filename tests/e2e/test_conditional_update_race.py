"""Conditional update under concurrency: 20 `PUT Patient?identifier=...` released together by a
barrier through gunicorn; the first creates, the others update that one Patient, no 5xx."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from ehr.identity.systems import IdentifierSystems

pytestmark = pytest.mark.e2e
CCCD = IdentifierSystems().cccd
NUMBER = "079199000003"


def test_twenty_parallel_conditional_updates_make_one(gunicorn):
    barrier = threading.Barrier(20)
    statuses: list[int] = []
    ids: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        patient = {"resourceType": "Patient", "name": [{"text": f"Đinh Thị Cập Nhật {n}"}], "identifier": [{"system": CCCD, "value": NUMBER}]}
        with gunicorn.client() as http:
            barrier.wait()
            response = http.put("/fhir/Patient", params={"identifier": f"{CCCD}|{NUMBER}"}, json=patient)
            with lock:
                statuses.append(response.status_code)
                if response.status_code < 300:
                    ids.append(response.json()["id"])

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(statuses) == {201: 1, 200: 19}
    assert len(set(ids)) == 1
    with gunicorn.client() as http:
        found = http.post("/fhir/Patient/_search", data={"identifier": f"{CCCD}|{NUMBER}"},
                          headers={"Content-Type": "application/x-www-form-urlencoded"}).json()
        assert [e["resource"]["id"] for e in found.get("entry", [])] == ids[:1]
        assert http.get(f"/fhir/Patient/{ids[0]}").json()["meta"]["versionId"] == "20"
