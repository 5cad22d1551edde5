"""At most one active Patient per national ID under concurrency: 20 requests released together
by a barrier through gunicorn, plain creates and conditional creates; exactly one Patient, no 5xx."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from ehr.identity.systems import IdentifierSystems

pytestmark = pytest.mark.e2e
CCCD = IdentifierSystems().cccd


def _race(gunicorn, number: str, conditional: bool) -> Counter[int]:
    barrier = threading.Barrier(20)
    statuses: list[int] = []
    lock = threading.Lock()
    patient = {"resourceType": "Patient", "name": [{"text": "Đinh Thị Đua"}], "identifier": [{"system": CCCD, "value": number}]}
    headers = {"If-None-Exist": f"identifier={CCCD}|{number}"} if conditional else {}

    def worker() -> None:
        with gunicorn.client() as http:
            barrier.wait()
            status = http.post("/fhir/Patient", json=patient, headers=headers).status_code
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Counter(statuses)


def _count(gunicorn, number: str) -> int:
    with gunicorn.client() as http:
        return len(http.post("/fhir/Patient/_search", data={"identifier": f"{CCCD}|{number}"},
                             headers={"Content-Type": "application/x-www-form-urlencoded"}).json().get("entry", []))


def test_plain_creates_of_one_cccd(gunicorn):
    statuses = _race(gunicorn, "079199000001", conditional=False)
    assert statuses == {201: 1, 409: 19}
    assert _count(gunicorn, "079199000001") == 1


def test_conditional_creates_of_one_cccd(gunicorn):
    statuses = _race(gunicorn, "079199000002", conditional=True)
    assert statuses == {201: 1, 200: 19}
    assert _count(gunicorn, "079199000002") == 1
