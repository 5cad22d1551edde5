"""gunicorn's access log (ehr/access_log.py): redacted path, escaped controls, no client address,
request ids intact."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.e2e
CCCD = "079203004567"


def _access(line: str, rid: str) -> bool:
    return line.endswith(f"ms rid={rid}") and '"GET /' in line


def _lines(server, ids: list[str]) -> list[str]:
    deadline = time.monotonic() + 10  # a worker writes its access line just after the response
    while True:
        lines = server.log.read_text("utf-8").splitlines()
        if all(any(_access(line, rid) for line in lines) for rid in ids) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_access_lines_are_redacted_escaped_addressless_and_keep_request_ids(gunicorn):
    # Request ids with long digit runs (as uuid4 hex and UUIDs can have) that the redaction once cut apart.
    ids = ["5f0a1234567890123456789abcdef012", "550e8400-e29b-41d4-a716-446655440000", "ab-0123456789012-cd", "0a1b2c3d4e5f6789"]
    paths = [f"/x/{CCCD}", f"/fhir/Patient%0d%0aFORGED%20200%20rid=x%0a/{CCCD}", f"/fhir/Patient%3Fidentifier={CCCD}", f"/x/rid={CCCD}"]
    with gunicorn.client() as http:
        for path, rid in zip(paths, ids):
            assert http.get(path, headers={"X-Request-ID": rid}).status_code == 404
    lines = _lines(gunicorn, ids)
    for rid in ids:
        access = [line for line in lines if _access(line, rid)]
        assert len(access) == 1 and "127.0.0.1" not in access[0]
        assert any(f"rid={rid}" in line for line in lines if "ehr.request" in line)  # the app's line: intact too
    assert [line for line in lines if "FORGED" in line] == [line for line in lines if "\\x0d\\x0aFORGED 200 rid=x\\x0a/" in line]
    assert len([line for line in lines if "FORGED" in line]) == 1
    text = "\n".join(lines)
    assert CCCD not in text and "[redacted-number]" in text
