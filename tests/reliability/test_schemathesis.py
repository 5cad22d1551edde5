"""Schema-driven fuzzing: schemathesis (its CLI, as an operator would run it) against the live
gunicorn server (4 workers), from the OpenAPI description the server publishes at
/fhir/openapi.json (ehr/api/openapi.py).

Phases: examples, coverage (deterministic boundary and negative values of every parameter and body)
and fuzzing (hypothesis, seeded). Check: not_a_server_error. Every request and answer is recorded in
a HAR file; from it the test counts the requests and also checks that every 4xx under /fhir is a
JSON OperationOutcome and that no body carries traceback text.
Short tier: >= 2,000 requests; long tier (EHR_LONG_RELIABILITY=1): >= 10,000 fuzzing requests.

A 5xx is explained only by a known bug: its incident id (in the OperationOutcome) is looked up in
the server log, whose withheld-message traceback names the innermost ehr/ frame; KNOWN_5XX maps
those frames to the bug. Any other 5xx fails the test. The requests it found (dates at the ends of
the calendar) are fixed and replayed as regressions in test_malformed.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from reliability.conftest import long_tier
from reliability.server import Launcher, Server, server_env

pytestmark = [pytest.mark.reliability, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
SHORT = {"phases": "examples,coverage,fuzzing", "max_examples": 10, "seed": 20261124, "minimum": 2_000}
LONG = {"phases": "examples,coverage,fuzzing", "max_examples": 150, "seed": 7, "minimum": 10_000}

# innermost ehr/ frame of the traceback -> the known bug it belongs to (none open; the date bugs
# it found at the ends of the calendar are fixed and kept in test_malformed.EDGES)
KNOWN_5XX: dict[tuple[str, str], str] = {}

TRACE = re.compile(rb'Traceback \(most recent call last\)|File "/[^"]+\.py", line \d+|site-packages/')
FRAME = re.compile(r'File "(?:.*/)?(ehr/[^"]+)", line \d+, in (\w+)')


@pytest.fixture(scope="module")
def server(app: Any, app_config: dict[str, Any], launcher: Launcher, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = launcher.start(server_env(app_config), tmp_path_factory.mktemp("schemathesis") / "gunicorn.log")
    try:
        yield running
    finally:
        running.stop()


def test_openapi_document_covers_every_fhir_route(app: Any, server: Server) -> None:
    import schemathesis

    doc = httpx.get(f"{server.base}/fhir/openapi.json", timeout=30).json()
    assert doc["openapi"].startswith("3.0") and doc["servers"] == [{"url": server.base}]
    routes = {(re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", r.rule), m.lower()) for r in app.url_map.iter_rules()
              if r.rule == "/fhir" or r.rule.startswith("/fhir/") for m in (r.methods or set()) - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert routes <= documented, routes - documented
    patient_search = {p["name"] for p in doc["paths"]["/fhir/Patient"]["get"]["parameters"]}
    assert {"identifier", "name", "birthdate", "phone", "identifier:not", "_count", "_page", "_id"} <= patient_search
    assert {"patient", "date", "code", "value-quantity"} <= {p["name"] for p in doc["paths"]["/fhir/Observation"]["get"]["parameters"]}
    schema = schemathesis.openapi.from_dict(doc)  # parses and resolves: a valid OpenAPI 3 document for the tool
    assert sum(1 for _ in schema.get_all_operations()) == len(documented)


def _incident_frames(log: str) -> dict[str, tuple[str, str] | None]:
    """incident id -> innermost ehr/ frame (path, function) of its logged traceback."""
    out: dict[str, tuple[str, str] | None] = {}
    lines = log.splitlines()
    for i, line in enumerate(lines):
        m = re.search(r"incident=([0-9a-f]+)", line)
        if not m or "ERROR" not in line:
            continue
        frames = []
        for follow in lines[i + 1:i + 200]:
            if not follow.startswith(" "):
                break
            f = FRAME.search(follow)
            if f:
                frames.append((f.group(1), f.group(2)))
        out[m.group(1)] = frames[-1] if frames else None
    return out


def run_schemathesis(server: Server, work: Path, phases: str, max_examples: int, seed: int, minimum: int) -> None:
    har = work / "schemathesis.har.json"
    command = [sys.executable, "-m", "schemathesis.cli", "run", f"{server.base}/fhir/openapi.json", "--checks", "not_a_server_error",
               "--phases", phases, "--max-examples", str(max_examples), "--seed", str(seed), "--generation-database", "none",
               "--workers", "2", "--request-timeout", "30", "--report", "har", "--report-har-path", str(har), "--no-color"]
    log_start = server.log.stat().st_size
    done = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=3600)
    summary = "\n".join(done.stdout.splitlines()[-30:])
    assert har.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    entries = json.loads(har.read_text())["log"]["entries"]
    statuses = Counter(e["response"]["status"] for e in entries)
    incidents = _incident_frames(server.log.read_bytes()[log_start:].decode(errors="replace"))
    explained: Counter[str] = Counter()
    unexplained, not_outcome, traces = [], [], []
    for e in entries:
        status, text = e["response"]["status"], e["response"]["content"].get("text", "") or ""
        request = f'{e["request"]["method"]} {e["request"]["url"]} {(e["request"].get("postData") or {}).get("text", "")[:300]!r}'
        if TRACE.search(text.encode()):
            traces.append(request)
        if status >= 500:
            m = re.search(r"incident ([0-9a-f]+)", text)
            frame = incidents.get(m.group(1)) if m else None
            if frame in KNOWN_5XX:
                explained[KNOWN_5XX[frame]] += 1
                print(f"\nknown 5xx ({frame[0]} {frame[1]}): {request}")
            else:
                unexplained.append(f"{status} {frame} {request}")
        elif 400 <= status < 500 and "/fhir" in e["request"]["url"]:
            try:
                ok = json.loads(text).get("resourceType") == "OperationOutcome"
            except (ValueError, AttributeError):
                ok = False
            if not ok:
                not_outcome.append(f"{status} {request}")
    print(f"\nschemathesis {phases}, max-examples {max_examples}, seed {seed}: {len(entries)} requests; statuses {dict(sorted(statuses.items()))}; "
          f"known 5xx {dict(explained)}\n{summary}")
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert len(entries) >= minimum
    assert unexplained == [], unexplained[:20]
    assert not_outcome == [], not_outcome[:20]
    assert traces == [], traces[:20]


def test_schemathesis_short_tier(server: Server, tmp_path: Path) -> None:
    run_schemathesis(server, tmp_path, **SHORT)


@long_tier
def test_schemathesis_long_tier(server: Server, tmp_path: Path) -> None:
    run_schemathesis(server, tmp_path, **LONG)
