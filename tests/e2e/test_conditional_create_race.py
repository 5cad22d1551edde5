"""Conditional create under concurrency: 20 requests released together, exactly one resource."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

pytestmark = pytest.mark.e2e


def test_twenty_parallel_conditional_creates_make_one(gunicorn):
    barrier = threading.Barrier(20)
    statuses: list[int] = []
    ids: list[str] = []
    lock = threading.Lock()
    resource = {"resourceType": "Organization", "name": "Bệnh viện Đa khoa Tỉnh", "identifier": [{"system": "urn:facility", "value": "01001"}]}

    def worker() -> None:
        with gunicorn.client() as http:
            barrier.wait()
            response = http.post("/fhir/Organization", json=resource, headers={"If-None-Exist": "identifier=urn:facility|01001"})
            with lock:
                statuses.append(response.status_code)
                if response.status_code < 300:
                    ids.append(response.json()["id"])

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(statuses) == {201: 1, 200: 19}
    assert len(set(ids)) == 1
    with gunicorn.client() as http:
        found = http.get("/fhir/Organization", params={"identifier": "01001"}).json()
    assert len(found["entry"]) == 1


def test_conditional_create_matching_several_is_412(gunicorn):
    with gunicorn.client() as http:
        for _ in range(2):
            assert http.post("/fhir/Organization", json={"resourceType": "Organization", "identifier": [{"value": "dup"}]}).status_code == 201
        response = http.post("/fhir/Organization", json={"resourceType": "Organization"}, headers={"If-None-Exist": "identifier=dup"})
        assert response.status_code == 412
