"""Malformed input: a seeded corpus of mutated FHIR requests (corpus.py) sent over real HTTP to
gunicorn (4 workers, EHR_MAX_BODY_BYTES = 256 KiB) by a raw-socket client.

Why gunicorn and not the Flask test client: the request then goes through the real HTTP parser,
body-size limit, worker processes and timeouts (a worker crash, hang or restart is a failure the
test client could never show), and each answer's wall time is real. Why a raw socket: an HTTP
library would normalize `..` segments, percent-encode or refuse bytes and set its own headers.

Pass: every request answered 4xx with a JSON OperationOutcome, 0 5xx, no traceback / SQL / file
path text in any body, each answer under 2 s, no worker restarted or timed out, no ERROR line in
the server log, and no connection to the loopback listener named as an external DTD.
Short tier: 2,000 requests; long tier (EHR_LONG_RELIABILITY=1): 20,000.

Requests the server once got wrong stay as regressions: EDGES (dates at the ends of the calendar,
which were 5xx) and GAPS (malformed input that was accepted, or answered without an
OperationOutcome).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator
from urllib.parse import parse_qs, urlparse

import pytest

from reliability import corpus as C
from reliability.conftest import long_tier
from reliability.server import Launcher, Server, server_env

pytestmark = [pytest.mark.reliability, pytest.mark.e2e]

BODY_LIMIT = 256 * 1024
MAX_SECONDS = 2.0
SHORT = (20261124, 2_000)
LONG = (7, 20_000)


class Listener:
    """A loopback TCP listener that counts connections (an XML parser fetching a DTD would connect)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture(scope="module")
def server(app: Any, app_config: dict[str, Any], launcher: Launcher, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = launcher.start(server_env(app_config, EHR_MAX_BODY_BYTES=str(BODY_LIMIT)), tmp_path_factory.mktemp("malformed") / "gunicorn.log")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    lis = Listener()
    try:
        yield lis
    finally:
        lis.close()


def _page_token(link: list[dict[str, str]]) -> str:
    url = next(x["url"] for x in link if x["relation"] == "next")
    return parse_qs(urlparse(url).query)["_page"][0]


def seed(server: Server, listener: Listener) -> C.Context:
    with server.client(headers={"Content-Type": C.FHIR_JSON}) as http:
        pids = [http.post("/fhir/Patient", json=C.patient()).json()["id"] for _ in range(3)]
        oid = http.post("/fhir/Observation", json=C.observation(f"Patient/{pids[0]}")).json()["id"]
        search = _page_token(http.get("/fhir/Patient", params={"_count": 1}).json()["link"])
        history = _page_token(http.get("/fhir/Patient/_history", params={"_count": 1}).json()["link"])
    return C.Context(pids[0], oid, search, history, BODY_LIMIT, f"http://127.0.0.1:{listener.port}/ehr-test.dtd")


def _workers(server: Server) -> dict[int, int]:
    return {p.pid: p.memory_info().rss for p in server.group_members() if p.pid != server.pgid}


def run_corpus(server: Server, listener: Listener, seed_value: int, count: int) -> None:
    ctx = seed(server, listener)
    cases = list(C.corpus(seed_value, count, ctx))
    assert len(cases) == count
    log_start = server.log.stat().st_size
    before = _workers(server)
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda case: C.send(server.port, case), cases))
    elapsed = time.monotonic() - started
    after = _workers(server)
    failures = [f"{C.problems(case, result, MAX_SECONDS)} {case.describe()}" for case, result in zip(cases, results, strict=True) if C.problems(case, result, MAX_SECONDS)]
    statuses = Counter(r.status for r in results)
    categories = Counter(c.category for c in cases)
    growth = max((after.get(pid, 0) - rss) / 1e6 for pid, rss in before.items())
    log = server.log.read_bytes()[log_start:].decode(errors="replace")
    print(f"\n{count} malformed requests (seed {seed_value}) in {elapsed:.1f}s over HTTP; statuses {dict(sorted(statuses.items()))}; "
          f"slowest {max(r.seconds for r in results) * 1000:.0f} ms; worker RSS growth max {growth:.1f} MB; categories {dict(sorted(categories.items()))}")
    assert failures == [], "\n".join(failures[:30])
    assert not any(s >= 500 for s in statuses)
    assert set(after) == set(before), "a worker died or was replaced during the corpus"
    for marker in ("WORKER TIMEOUT", "Booting worker", "exited with code", "was sent SIGKILL", " ERROR "):
        assert marker not in log, marker
    assert listener.connections == 0  # no XML parser fetched the external DTD
    assert growth < 100, f"worker RSS grew by {growth:.0f} MB"


def test_malformed_corpus_short_tier(server: Server, listener: Listener) -> None:
    run_corpus(server, listener, *SHORT)


@long_tier
def test_malformed_corpus_long_tier(server: Server, listener: Listener) -> None:
    run_corpus(server, listener, *LONG)


def test_corpus_is_deterministic() -> None:
    ctx = C.Context("p", "o", "tok" * 20, "hist" * 20, BODY_LIMIT, "http://127.0.0.1:9/x.dtd")
    first = list(C.corpus(5, 120, ctx))
    assert [c.describe() for c in first] == [c.describe() for c in C.corpus(5, 120, ctx)]
    assert [c.describe() for c in first] != [c.describe() for c in C.corpus(6, 120, ctx)]
    assert len({c.describe() for c in first}) > 100 and {c.category for c in first} == set(C.CATEGORIES)


# --- what the server gets wrong today ------------------------------------------------------------

def _obs(**extra: Any) -> bytes:
    return json.dumps({"resourceType": "Observation", "status": "final", "code": {"text": "pulse"}, **extra}).encode()


def _tx(*entries: dict[str, Any], raw_entry: Any = None) -> bytes:
    return json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": list(entries) if raw_entry is None else raw_entry}).encode()


_P = {"resourceType": "Patient", "name": [{"text": "Phạm Thu Hà"}]}
_POST_P = {"fullUrl": "urn:uuid:4f8e7a34-6b1c-4f5e-8d2a-1c3b5e7f9a0b", "resource": _P, "request": {"method": "POST", "url": "Patient"}}

# Were 5xx (found by schemathesis and by probing dates at the edge of the calendar); fixed, kept as regressions.
EDGES = [
    (201, C.Case("edge", "write date 9999-12-31", "POST", "/fhir/Observation", _obs(effectiveDateTime="9999-12-31"))),
    (201, C.Case("edge", "write instant 9999", "POST", "/fhir/Observation", _obs(effectivePeriod={"start": "9999-12-31T23:59:59Z"}))),
    (400, C.Case("edge", "birthdate=0000", "GET", "/fhir/Patient?birthdate=0000", b"", ())),
    (200, C.Case("edge", "birthdate=9999-12-31", "GET", "/fhir/Patient?birthdate=9999-12-31", b"", ())),
    (400, C.Case("edge", "_search birthdate=0000", "POST", "/fhir/Patient/_search", b"birthdate=0000", (("Content-Type", "application/x-www-form-urlencoded"),))),
    (200, C.Case("edge", "date=9999-12-31T23:59:59Z", "GET", "/fhir/Observation?date=9999-12-31T23:59:59Z", b"", ())),
]

@pytest.mark.parametrize("status,case", [pytest.param(s, c, id=c.label) for s, c in EDGES])
def test_edge_of_calendar(server: Server, status: int, case: C.Case) -> None:
    """Year 0000 is not a FHIR date (400 OperationOutcome); 9999-12-31 is, and stores and searches."""
    result = C.send(server.port, case)
    assert result.status == status, result.body[:300]
    if status == 400:
        assert C.problems(case, result, MAX_SECONDS) == []


# Malformed input that was accepted (2xx) or answered without an OperationOutcome; fixed, kept as regressions.
GAPS = [
    ("required binding not enforced: Patient.gender 'femalex' is stored (201)",
     C.Case("gap", "gender femalex", "POST", "/fhir/Patient", json.dumps({**_P, "gender": "femalex"}).encode())),
    ("required binding not enforced: Observation.status 'bogus' is stored (201)",
     C.Case("gap", "status bogus", "POST", "/fhir/Observation", _obs(status="bogus"))),
    ("required binding not enforced: ContactPoint.system 'fax2' is stored (201)",
     C.Case("gap", "telecom fax2", "POST", "/fhir/Patient", json.dumps({**_P, "telecom": [{"system": "fax2", "value": "1"}]}).encode())),
    ("transaction not all-or-nothing: a failing GET entry gives 200 with a 400 entry, the POST entry is committed",
     C.Case("gap", "tx failing GET", "POST", "/fhir", _tx(_POST_P, {"request": {"method": "GET", "url": "Patient?birthdate=notadate"}}))),
    ("transaction with \"entry\": {} (an object) answered 200 (\"x\" and 5 are 400)",
     C.Case("gap", "tx entry {}", "POST", "/fhir", _tx(raw_entry={}))),
    ("transaction entry.fullUrl of the wrong JSON type (5) accepted",
     C.Case("gap", "tx fullUrl 5", "POST", "/fhir", _tx({**_POST_P, "fullUrl": 5}))),
    ("transaction PUT to a version URL (Patient/x1/_history/1) accepted as an update of Patient/x1",
     C.Case("gap", "tx PUT _history", "POST", "/fhir", _tx({"resource": {**_P, "id": "x1"}, "request": {"method": "PUT", "url": "Patient/x1/_history/1"}}))),
    ("transaction request.method 'get' (lower case; the code is GET) executed",
     C.Case("gap", "tx method get", "POST", "/fhir", _tx({"request": {"method": "get", "url": "Patient"}}))),
    ("narrative with an xml-stylesheet processing instruction (an external stylesheet reference) accepted",
     C.Case("gap", "narrative PI", "POST", "/fhir/Patient", json.dumps({**_P, "text": {"status": "generated", "div":
            '<?xml-stylesheet href="http://127.0.0.1:9/x.xsl"?><div xmlns="http://www.w3.org/1999/xhtml">x</div>'}}).encode())),
    ("the id '..' is accepted (the R4 id regex allows it, but clients and proxies resolve /fhir/Patient/.. to /fhir/)",
     C.Case("gap", "id ..", "PUT", "/fhir/Patient/..", json.dumps({**_P, "id": ".."}).encode())),
    ("an empty path segment under /fhir gets Werkzeug's 308 HTML redirect (merge_slashes), not an OperationOutcome",
     C.Case("gap", "double slash", "GET", "/fhir//Patient", b"", ())),
    ("an encoded slash in an id (%2F) gets Werkzeug's 308 HTML redirect, not an OperationOutcome",
     C.Case("gap", "%2F id", "GET", "/fhir/Patient/%2F/_history", b"", ())),
]


@pytest.mark.parametrize("reason,case", [pytest.param(r, c, id=c.label) for r, c in GAPS])
def test_former_gap(server: Server, reason: str, case: C.Case) -> None:
    result = C.send(server.port, case)
    assert C.problems(case, result, MAX_SECONDS) == [], f"{reason}: {result.status} {result.body[:200]!r}"


def test_regression_cases_are_otherwise_well_formed() -> None:
    """The cases above are malformed in exactly one way: the JSON parses and framing is valid."""
    for _, case in EDGES + GAPS:
        if case.body and case.headers and dict(case.headers).get("Content-Type") == C.FHIR_JSON:
            json.loads(case.body)
