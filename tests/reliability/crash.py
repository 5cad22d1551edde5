"""The kill -9 workload: concurrent creates, updates and transaction bundles against gunicorn, every
2xx journalled to an fsynced file, the whole server process group SIGKILLed at a random moment,
restarted, and the journal checked against what the restarted server holds.

Journal lines (JSON, one per line, fsynced before the next request of that client is sent):
  {"op": "write", "type", "id", "vid", "sha"}            an acknowledged create/update
  {"op": "bundle-sent", "bundle", "keys": [[type, key, id]]}  written BEFORE a transaction is sent
  {"op": "bundle-ok", "bundle", "entries": [...]}        its 200 transaction-response
  {"op": "bundle-refused", "bundle", "status"}           its 4xx answer (nothing may exist)
`sha` is the SHA-256 of the resource as the server returned it (canonical JSON): a later vread of
that version must return exactly it. `key` is a unique identifier value carried by each entry, to
count, after the crash, how many entries of a bundle exist whatever its fate: all or none.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import httpx

from reliability.server import Launcher, Server

KEY_SYSTEM = "urn:ehr-reliability:entry"
CCCD_SYSTEM = "https://fhir.ehr-vn.org/sid/cccd"
FHIR = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def sha(doc: Any) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


@dataclass(frozen=True)
class Canaries:
    """Personal data planted in the workload; the leak scan looks for them afterwards."""

    name: str
    cccd: str
    phone: str

    @classmethod
    def random(cls, rng: random.Random) -> "Canaries":
        letters = "abcdeghiklmnopqrstuvxyăâđêôơư"
        tag = "".join(rng.choice(letters) for _ in range(6))
        year = 1988
        cccd = f"079{1}{year % 100:02d}{rng.randrange(1_000_000):06d}"  # HCMC, female born in the 1900s
        return cls(name=f"Trịnh Thị Ngọc Ánh Kiểmtra{tag}", cccd=cccd, phone=f"09{rng.randrange(10**8):08d}")

    def items(self) -> dict[str, str]:
        return {"name": self.name, "cccd": self.cccd, "phone": self.phone}


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def record(self, **entry: Any) -> None:
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
        with self._lock:
            os.write(self._fd, line)
            os.fsync(self._fd)

    def close(self) -> None:
        os.close(self._fd)

    def entries(self, trial: int | None = None) -> list[dict[str, Any]]:
        out = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
        return [e for e in out if trial is None or e["trial"] == trial]


# --- resources --------------------------------------------------------------------------------


def _key() -> str:
    return uuid.uuid4().hex


def patient(c: Canaries, rng: random.Random, key: str, rid: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": KEY_SYSTEM, "value": key}],
        "active": True,
        "name": [{"text": c.name, "family": "Trịnh", "given": ["Thị", "Ngọc", "Ánh"]}],
        "telecom": [{"system": "phone", "value": c.phone, "use": "mobile"}],
        "gender": "female",
        "birthDate": f"19{rng.randrange(40, 99)}-0{rng.randrange(1, 9)}-1{rng.randrange(0, 9)}",
    }
    if rid:
        doc["id"] = rid
    return doc


def observation(subject: str, rng: random.Random, key: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "identifier": [{"system": KEY_SYSTEM, "value": key}],
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": subject},
        "effectiveDateTime": f"2026-0{rng.randrange(1, 9)}-1{rng.randrange(0, 9)}T0{rng.randrange(0, 9)}:15:00+07:00",
        "valueQuantity": {"value": rng.randrange(50, 130), "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
    }


def transaction(c: Canaries, rng: random.Random, refused: bool) -> tuple[dict[str, Any], list[tuple[str, str, str | None]]]:
    """A 2-5 entry transaction: PUT of a Patient with a client id, POSTs of Observations about it.
    A refused one ends with an entry that must fail (a reference to nothing, or an invalid status),
    after the others were processed: everything must be rolled back."""
    pid = f"rel-{uuid.uuid4().hex[:20]}"
    patient_url = f"urn:uuid:{uuid.uuid4()}"
    keys: list[tuple[str, str, str | None]] = []  # (type, identifier value, client-assigned id)
    pkey = _key()
    keys.append(("Patient", pkey, pid))
    entries = [{"fullUrl": patient_url, "resource": patient(c, rng, pkey, pid), "request": {"method": "PUT", "url": f"Patient/{pid}"}}]
    for _ in range(rng.randrange(1, 5)):
        okey = _key()
        keys.append(("Observation", okey, None))
        entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": observation(patient_url, rng, okey), "request": {"method": "POST", "url": "Observation"}})
    if refused:
        okey = _key()
        keys.append(("Observation", okey, None))
        bad = observation(f"Patient/ghost-{uuid.uuid4().hex[:12]}", rng, okey)
        if rng.random() < 0.5:
            bad["status"] = "not-a-status"
        entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": bad, "request": {"method": "POST", "url": "Observation"}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}, keys


# --- the workload -----------------------------------------------------------------------------


@dataclass
class TrialStats:
    trial: int
    acknowledged: int = 0
    bundles_ok: int = 0
    bundles_refused: int = 0
    bundles_in_flight: int = 0
    statuses: Counter = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    killed_processes: int = 0
    kill_after_s: float = 0.0
    restart_s: float = 0.0


class Client(threading.Thread):
    def __init__(self, server: Server, journal: Journal, canaries: Canaries, trial: int, seed: int, stop: threading.Event, stats: TrialStats,
                 lock: threading.Lock) -> None:
        super().__init__(daemon=True)
        self.server, self.journal, self.c, self.trial = server, journal, canaries, trial
        self.rng = random.Random(seed)
        self.stop_event, self.stats, self.lock = stop, stats, lock
        self.mine: dict[str, int] = {}  # patient id -> acknowledged version

    def _count(self, status: int, what: str, expected: bool) -> None:
        with self.lock:
            self.stats.statuses[status] += 1
            if not expected:
                self.stats.unexpected.append(f"{what}: {status}")

    def _ack(self, doc: dict[str, Any]) -> None:
        self.journal.record(trial=self.trial, op="write", type=doc["resourceType"], id=doc["id"], vid=int(doc["meta"]["versionId"]), sha=sha(doc))
        with self.lock:
            self.stats.acknowledged += 1

    def run(self) -> None:
        with httpx.Client(base_url=self.server.base, timeout=20, headers=FHIR) as http:
            while not self.stop_event.is_set():
                try:
                    self.step(http)
                except httpx.HTTPError:
                    return  # the server was killed under us: this request's fate is unknown

    def step(self, http: httpx.Client) -> None:
        roll = self.rng.random()
        if roll < 0.25 or not self.mine:
            r = http.post("/fhir/Patient", json=patient(self.c, self.rng, _key()))
            self._count(r.status_code, "create Patient", r.status_code == 201)
            if r.status_code == 201:
                doc = r.json()
                self._ack(doc)
                self.mine[doc["id"]] = int(doc["meta"]["versionId"])
        elif roll < 0.45:
            pid = self.rng.choice(sorted(self.mine))
            r = http.post("/fhir/Observation", json=observation(f"Patient/{pid}", self.rng, _key()))
            self._count(r.status_code, "create Observation", r.status_code == 201)
            if r.status_code == 201:
                self._ack(r.json())
        elif roll < 0.7:
            pid = self.rng.choice(sorted(self.mine))
            doc = patient(self.c, self.rng, _key(), pid)
            doc["telecom"].append({"system": "phone", "value": f"02{self.rng.randrange(10**8):08d}", "use": "home"})
            r = http.put(f"/fhir/Patient/{pid}", json=doc, headers={"If-Match": f'W/"{self.mine[pid]}"'})
            self._count(r.status_code, "update Patient", r.status_code == 200)
            if r.status_code == 200:
                doc = r.json()
                self._ack(doc)
                self.mine[pid] = int(doc["meta"]["versionId"])
        else:
            refused = self.rng.random() < 0.2
            bundle, keys = transaction(self.c, self.rng, refused)
            bid = uuid.uuid4().hex
            self.journal.record(trial=self.trial, op="bundle-sent", bundle=bid, keys=keys, refused_by_design=refused)
            r = http.post("/fhir", json=bundle)
            self._count(r.status_code, "transaction", (r.status_code == 200) != refused and r.status_code < 500)
            if r.status_code == 200:
                out = []
                for entry in r.json()["entry"]:
                    res = entry["resource"]
                    out.append({"type": res["resourceType"], "id": res["id"], "vid": int(res["meta"]["versionId"]), "sha": sha(res)})
                self.journal.record(trial=self.trial, op="bundle-ok", bundle=bid, entries=out)
                with self.lock:
                    self.stats.bundles_ok += 1
            elif 400 <= r.status_code < 500:
                self.journal.record(trial=self.trial, op="bundle-refused", bundle=bid, status=r.status_code)
                with self.lock:
                    self.stats.bundles_refused += 1


# --- checks -----------------------------------------------------------------------------------


def _search_count(http: httpx.Client, rtype: str, key: str) -> tuple[int, list[str]]:
    r = http.get(f"/fhir/{rtype}", params={"identifier": f"{KEY_SYSTEM}|{key}"})
    assert r.status_code == 200, (r.status_code, r.text[:300])
    ids = [e["resource"]["id"] for e in r.json().get("entry", []) if e.get("search", {}).get("mode") == "match"]
    return len(ids), ids


def verify(server: Server, entries: list[dict[str, Any]], workers: int = 4) -> tuple[list[str], int]:
    """Problems found (empty when the restarted server holds every acknowledged write exactly and
    no bundle partially), and how many checks ran."""
    problems: list[str] = []
    writes = [e for e in entries if e["op"] == "write"] + [
        {**x, "bundle": e["bundle"]} for e in entries if e["op"] == "bundle-ok" for x in e["entries"]]
    fate = {e["bundle"]: e["op"] for e in entries if e["op"] in ("bundle-ok", "bundle-refused")}
    acknowledged_entries = {e["bundle"]: len(e["entries"]) for e in entries if e["op"] == "bundle-ok"}
    sent = [e for e in entries if e["op"] == "bundle-sent"]
    with httpx.Client(base_url=server.base, timeout=30, headers=FHIR) as http:

        def check_write(w: dict[str, Any]) -> str | None:
            r = http.get(f"/fhir/{w['type']}/{w['id']}/_history/{w['vid']}")
            if r.status_code != 200:
                return f"acknowledged {w['type']}/{w['id']}/_history/{w['vid']} (trial {w.get('trial')}): {r.status_code}"
            if sha(r.json()) != w["sha"]:
                return f"acknowledged {w['type']}/{w['id']}/_history/{w['vid']} differs from what was acknowledged"
            return None

        def check_bundle(b: dict[str, Any]) -> str | None:
            outcome = fate.get(b["bundle"], "in-flight")
            if outcome == "bundle-ok":  # every entry is read back by version (check_write): all exist
                if acknowledged_entries[b["bundle"]] != len(b["keys"]):
                    return f"bundle {b['bundle']}: {acknowledged_entries[b['bundle']]} entries acknowledged of {len(b['keys'])} sent"
                return None
            present = 0
            for rtype, key, rid in b["keys"]:
                found = _search_count(http, rtype, key)[0]
                present += found
                if rid is not None:  # the search index and the resource itself agree
                    exists = http.get(f"/fhir/{rtype}/{rid}").status_code == 200
                    if exists != bool(found):
                        return f"bundle {b['bundle']}: {rtype}/{rid} exists={exists} but its index finds {found}"
            expected = {"bundle-refused": {0}, "in-flight": {0, len(b["keys"])}}[outcome]
            if present not in expected:
                return f"bundle {b['bundle']} ({outcome}, trial {b['trial']}): {present} of {len(b['keys'])} entries exist"
            return None

        jobs: list[Callable[[], str | None]] = [lambda w=w: check_write(w) for w in writes] + [lambda b=b: check_bundle(b) for b in sent]
        with ThreadPoolExecutor(workers) as pool:
            problems = [p for p in pool.map(lambda job: job(), jobs) if p]
    return problems, len(jobs)


def newest_versions_hold(server: Server, entries: list[dict[str, Any]]) -> list[str]:
    """The newest acknowledged version of each resource is still there (nothing went backwards)."""
    writes = [e for e in entries if e["op"] == "write"] + [x for e in entries if e["op"] == "bundle-ok" for x in e["entries"]]
    newest: dict[tuple[str, str], int] = {}
    for w in writes:
        newest[(w["type"], w["id"])] = max(newest.get((w["type"], w["id"]), 0), int(w["vid"]))
    problems = []
    with httpx.Client(base_url=server.base, timeout=30, headers=FHIR) as http:
        def check(item: tuple[tuple[str, str], int]) -> str | None:
            (rtype, rid), vid = item
            r = http.get(f"/fhir/{rtype}/{rid}")
            if r.status_code != 200 or int(r.json()["meta"]["versionId"]) < vid:
                return f"{rtype}/{rid}: current version older than acknowledged version {vid} ({r.status_code})"
            return None

        with ThreadPoolExecutor(4) as pool:
            problems = [p for p in pool.map(check, newest.items()) if p]
    return problems


def sqlite_integrity(path: Path) -> str:
    conn = sqlite3.connect(path, timeout=30)
    try:
        return ";".join(str(row[0]) for row in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()


# --- the trials -------------------------------------------------------------------------------


@dataclass
class CrashRun:
    trials: list[TrialStats]
    problems: list[str]
    checks: int
    integrity: list[str]
    journal: Path
    canaries: Canaries
    seconds: float
    final_checks: int = 0


def run_trials(launcher: Launcher, env: dict[str, str], log: Path, journal_path: Path, trials: int, seed: int, clients: int = 4,
               kill_window: tuple[float, float] = (0.15, 1.0), sqlite_path: Path | None = None, on_final: Callable[[Server], None] | None = None,
               progress: Callable[[str], None] = lambda _: None) -> CrashRun:
    started = time.monotonic()
    rng = random.Random(seed)
    canaries = Canaries.random(random.Random(f"{seed}:canaries"))
    journal = Journal(journal_path)
    stats: list[TrialStats] = []
    problems: list[str] = []
    integrity: list[str] = []
    checks = 0
    canary_patient: tuple[str, int] | None = None
    server: Server | None = None
    try:
        for trial in range(trials + 1):
            t0 = time.monotonic()
            server = launcher.start(env, log)
            restart = time.monotonic() - t0
            if trial:
                found, n = verify(server, journal.entries(trial - 1))
                problems += found
                checks += n
            if trial == trials:  # the last start: check everything ever acknowledged, then hand over
                found, n = verify(server, journal.entries())
                problems += found + newest_versions_hold(server, journal.entries())
                checks += n
                try:
                    if on_final is not None:
                        on_final(server)
                finally:
                    server.stop()
                break
            st = TrialStats(trial, restart_s=restart)
            with httpx.Client(base_url=server.base, timeout=20, headers=FHIR) as http:
                # The one patient with the canary national ID: created once, updated every trial.
                doc = patient(canaries, rng, _key(), canary_patient[0] if canary_patient else None)
                doc["identifier"].append({"system": CCCD_SYSTEM, "value": canaries.cccd})
                if canary_patient is None:
                    r = http.post("/fhir/Patient", json=doc)
                else:
                    r = http.put(f"/fhir/Patient/{canary_patient[0]}", json=doc, headers={"If-Match": f'W/"{canary_patient[1]}"'})
                assert r.status_code in (200, 201), r.text[:500]
                body = r.json()
                canary_patient = (body["id"], int(body["meta"]["versionId"]))
                journal.record(trial=trial, op="write", type="Patient", id=body["id"], vid=canary_patient[1], sha=sha(body))
            stop = threading.Event()
            lock = threading.Lock()
            threads = [Client(server, journal, canaries, trial, rng.randrange(2**32), stop, st, lock) for _ in range(clients)]
            for t in threads:
                t.start()
            st.kill_after_s = rng.uniform(*kill_window)
            time.sleep(st.kill_after_s)
            st.killed_processes = server.kill9()
            stop.set()
            for t in threads:
                t.join(30)
            st.bundles_in_flight = sum(1 for e in journal.entries(trial) if e["op"] == "bundle-sent") - st.bundles_ok - st.bundles_refused
            if sqlite_path is not None:
                integrity.append(sqlite_integrity(sqlite_path))
            stats.append(st)
            progress(f"trial {trial}: {st.acknowledged} acknowledged, {st.bundles_ok} bundles ok, {st.bundles_refused} refused, "
                     f"{st.bundles_in_flight} in flight, killed {st.killed_processes} processes after {st.kill_after_s:.2f}s")
    finally:
        journal.close()
        if server is not None and server.alive:  # a check failed half-way: leave nothing running
            server.kill9()
    return CrashRun(stats, problems, checks, integrity, journal_path, canaries, time.monotonic() - started)
