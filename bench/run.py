#!/usr/bin/env python3
"""The project's benchmark: real gunicorn on loopback, a load generator in another process.

    .venv/bin/python bench/run.py --db sqlite --sizes 10000,100000 --runs 3
    .venv/bin/python bench/run.py --db postgresql --sizes 10000,100000 --runs 3
    .venv/bin/python bench/run.py --db postgresql --sizes 10000,100000,1000000   # the 1M size

For each run: a fresh database, data from the project's one synthetic generator (36 resources per
patient, posted as transaction bundles), then at each size: ingest rate, reads by id (max req/s at
16 clients, latency at 1 and 4), searches (national ID, name prefix, Observation by patient and
date range), Patient/$everything (36 and ~1,000 resources), Bulk export rate, worker RSS, and the
CPU floor (validate + canonicalise + encrypt in a tight loop, no HTTP, no database). Prints a
table and writes one JSON document (medians of the runs) to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
import psutil  # noqa: E402

import loadgen  # noqa: E402
from ehr.cli.devkeys import ensure_dev_keys  # noqa: E402
from ehr.synthetic.generator import Generator  # noqa: E402

PG_ADMIN = os.environ.get("EHR_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")
SEED = 20261124
BATCH_PATIENTS = 1  # one patient per transaction bundle, as clinics send


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, env: dict[str, str], workers: int, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers), "wsgi:app"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    def worker_rss_mb(self) -> float:
        master = psutil.Process(self.proc.pid)
        workers = [c for c in master.children() if "ehr.jobs" not in " ".join(c.cmdline())]
        return max((c.memory_info().rss for c in workers), default=0) / 1e6

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=60)
        self.log.close()


class Database:
    def __init__(self, kind: str, instance: Path) -> None:
        self.kind = kind
        if kind == "sqlite":
            self.url = f"sqlite:///{instance / 'bench.sqlite3'}"
            self.name = None
        else:
            import psycopg

            self.name = f"ehr_bench_{int(time.time())}_{os.getpid()}"
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {self.name}")
            self.url = PG_ADMIN.rsplit("/", 1)[0] + f"/{self.name}"

    def drop(self) -> None:
        if self.name:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


def env_for(instance: Path, db_url: str) -> dict[str, str]:
    return {**os.environ, "EHR_INSTANCE_PATH": str(instance), "EHR_DATABASE_URL": db_url, "EHR_ENV": "development",
            "EHR_ACCESS_LOG": str(instance / "access.log"), "EHR_LOG_LEVEL": "WARNING",
            "EHR_RATELIMIT_ENABLED": "false"}  # one load generator on loopback: the API rate limits would cap it


def median(values: list[float]) -> float:
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


# --- phases ---------------------------------------------------------------------------------------


def ingest(server: Server, generator: Generator, start: int, patients: int) -> dict[str, float]:
    bodies = [json.dumps(b, default=float).encode() for b in generator.patients(patients, start=start)]
    requests = [loadgen.Request("POST", "/fhir", body) for body in bodies]
    result = loadgen.run(server.base, requests, clients=4, duration=3600, limit=len(requests))
    ok = result.statuses.get(200, 0)
    assert ok == len(requests), f"ingest failed: {result.statuses}"
    resources = sum(len(json.loads(b)["entry"]) for b in bodies)
    return {"resources": resources, "resources_per_s": resources / result.elapsed}


def sample_ids(db_url: str, rtype: str, n: int) -> list[str]:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT logical_id FROM resources WHERE resource_type = :t AND NOT deleted ORDER BY logical_id LIMIT :n"),
                            {"t": rtype, "n": n}).all()
    engine.dispose()
    return [r[0] for r in rows]


def latency(server: Server, requests: list[loadgen.Request], clients: int, seconds: float) -> dict[str, float]:
    result = loadgen.run(server.base, requests, clients=clients, duration=seconds)
    bad = {k: v for k, v in result.statuses.items() if k >= 400}
    assert not bad and not result.errors, f"errors: {bad} {result.errors}"
    return {"req_per_s": result.rate, "p50_ms": result.percentile(50) * 1000, "p95_ms": result.percentile(95) * 1000,
            "p99_ms": result.percentile(99) * 1000, "n": result.count}


def export_rate(server: Server) -> dict[str, float]:
    with httpx.Client(base_url=server.base, timeout=120) as http:
        started = time.perf_counter()
        kick = http.get("/fhir/$export", headers={"Prefer": "respond-async", "Accept": "application/fhir+json"})
        status = kick.headers["content-location"].replace(server.base, "")
        while True:
            r = http.get(status)
            if r.status_code == 200:
                break
            time.sleep(0.1)
        elapsed = time.perf_counter() - started
        count = sum(o["count"] for o in r.json()["output"])
    return {"resources": count, "resources_per_s": count / elapsed, "seconds": elapsed}


def cpu_floor(generator: Generator, patients: int = 60) -> float:
    """Validate + canonicalise + encrypt the same kind of resources in one process: the physical
    limit of this design on this machine (no HTTP, no database)."""
    from ehr.crypto.envelope import DataKey, generate_data_key, resource_aad
    from ehr.fhir import jsonio
    from ehr.fhir.validation import validate_resource

    docs = [json.dumps(e["resource"], default=float).encode() for b in generator.patients(patients, start=10**6) for e in b["entry"]]
    key = DataKey("k", generate_data_key())
    started = time.perf_counter()
    for i, raw in enumerate(docs):
        doc = jsonio.parse_resource(raw)
        doc["id"] = "x"
        validate_resource(doc)
        key.seal(jsonio.canonical(doc), resource_aad(doc["resourceType"], "x", 1, "k"))
    return len(docs) / (time.perf_counter() - started)


def big_patient(server: Server, generator: Generator) -> str:
    bundle = generator.patient_bundle(999_999)
    patient = bundle["entry"][0]
    obs = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"][0]
    plain_obs = {k: v for k, v in obs["resource"].items() if k != "encounter"}
    entries = [patient] + [{**obs, "fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": plain_obs} for _ in range(999)]
    r = httpx.post(f"{server.base}/fhir", content=json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries}, default=float),
                   headers={"Content-Type": "application/fhir+json"}, timeout=300)
    assert r.status_code == 200, r.text[:300]
    return r.json()["entry"][0]["response"]["location"].split("/Patient/")[1].split("/")[0]


def measure(server: Server, db_url: str, generator: Generator, patients_loaded: int, big_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    obs_ids = sample_ids(db_url, "Observation", 2000)
    reads = [loadgen.Request("GET", f"/fhir/Observation/{i}") for i in obs_ids]
    # The stack's ceiling: the same gunicorn, app hooks and load generator on /healthz (no store,
    # no audit): what any FHIR read can at most reach on this machine with this configuration.
    out["ceiling_16"] = latency(server, [loadgen.Request("GET", "/healthz")], 16, 5)
    out["read_16"] = latency(server, reads, 16, 10)
    out["read_1"] = latency(server, reads, 1, 5)
    out["read_4"] = latency(server, reads, 4, 5)
    systems = generator.systems
    people = [generator.patient_bundle(i)["entry"][0]["resource"] for i in range(0, patients_loaded, max(1, patients_loaded // 300))]
    by_id = [loadgen.Request("GET", f"/fhir/Patient?identifier={systems.cccd}|{p['identifier'][0]['value']}") for p in people]
    out["search_national_id_4"] = latency(server, by_id, 4, 5)
    by_name = [loadgen.Request("GET", "/fhir/Patient?name=" + quote(p["name"][0]["text"][:10])) for p in people]
    out["search_name_prefix_4"] = latency(server, by_name, 4, 5)
    patient_ids = sample_ids(db_url, "Patient", 300)
    by_date = [loadgen.Request("GET", f"/fhir/Observation?patient={pid}&date=ge2024-01-01&date=le2026-06-30") for pid in patient_ids]
    out["search_obs_patient_date_4"] = latency(server, by_date, 4, 5)
    everything = [loadgen.Request("GET", f"/fhir/Patient/{pid}/$everything?_count=1000") for pid in patient_ids if pid != big_id]
    out["everything_36_1"] = latency(server, everything, 1, 5)
    out["everything_1000_1"] = latency(server, [loadgen.Request("GET", f"/fhir/Patient/{big_id}/$everything?_count=1000")], 1, 5)
    out["export"] = export_rate(server)
    out["worker_rss_mb"] = server.worker_rss_mb()
    out["icd10_picker_4"] = picker_latency()
    return out


PICKER_QUERIES = ["tăng huyết áp", "tang huyet ap", "đái tháo đường typ 2", "viêm họng cấp", "viem phoi", "sốt xuất huyết",
                  "viêm", "benh", "J06", "e11.9", "hen phế quản", "đau đầu", "diabetes", "acute pharyngitis"]


def _picker_client(seconds: float, offset: int) -> list[float]:
    from ehr.identity import icd10

    icd10.index()  # built once per worker at first use; not part of a request's latency
    stop, out, i = time.perf_counter() + seconds, [], offset
    while time.perf_counter() < stop:
        t0 = time.perf_counter()
        icd10.search(PICKER_QUERIES[i % len(PICKER_QUERIES)], 15)
        out.append((time.perf_counter() - t0) * 1000)
        i += 1
    return out


def picker_latency(clients: int = 4, seconds: float = 3.0) -> dict[str, float]:
    """The diagnosis picker's search (`ehr.identity.icd10.search`, what GET /clinic/icd10 runs)
    in `clients` processes, as gunicorn's sync workers would run it. In process, no HTTP: the
    clinic route needs a signed-in staff session (TOTP for doctors), which the load generator
    does not carry, so this row leaves out HTTP, the session and the audit."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(clients) as pool:
        times = sorted(t for part in pool.map(_picker_client, [seconds] * clients, range(clients)) for t in part)
    return {"requests": len(times), "p50_ms": times[len(times) // 2], "p99_ms": times[int(len(times) * 0.99)]}


def analyze(db_url: str) -> None:
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("ANALYZE")


def explain(db_url: str, instance: Path) -> dict[str, Any]:
    """PostgreSQL plans of the main search shapes (after ANALYZE): index use, no seq scan of idx_*."""
    os.environ.update(env_for(instance, db_url))
    from sqlalchemy import text

    from ehr import create_app
    from ehr.fhir import query as q
    from ehr.services.search import _Resolver
    from ehr.store import search as s

    app = create_app()
    store = app.extensions["ehr.store"]
    person = Generator(seed=SEED).patient_bundle(3)["entry"][0]["resource"]
    pid = sample_ids(db_url, "Patient", 1)[0]
    shapes = {
        "identifier": ("Patient", [("identifier", f"{store.systems.cccd}|{person['identifier'][0]['value']}")]),
        "name_prefix": ("Patient", [("name", person["name"][0]["text"][:10])]),
        "patient_date": ("Observation", [("patient", pid), ("date", "ge2024-01-01"), ("date", "le2026-06-30")]),
        "code": ("Observation", [("code", "http://loinc.org|8867-4")]),
    }
    plans = {}
    with store.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    for name, (rtype, params) in shapes.items():
        query = q.parse(params)
        plan = _Resolver(store, True, [], None).plan(rtype, query.clauses)  # no access restriction: the bench is an operator
        r, stmt = s._base(plan)
        stmt = stmt.order_by(r.c.logical_id).limit(51)
        compiled = stmt.compile(dialect=store.engine.dialect)  # bound parameters: blind tokens are bytes
        with store.engine.connect() as conn:
            lines = [row[0] for row in conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params)]
        seq = [line.strip() for line in lines if "Seq Scan" in line and "idx_" in line]
        plans[name] = {"uses_index": any("Index" in line for line in lines), "seq_scans_of_index_tables": seq, "plan": lines}
    store.engine.dispose()
    return plans


def one_run(args: argparse.Namespace, run: int) -> dict[str, Any]:
    instance = Path(tempfile.mkdtemp(prefix="ehr-bench-"))
    ensure_dev_keys(instance)
    db = Database(args.db, instance)
    env = env_for(instance, db.url)
    env["EHR_EXPORT_BATCH"] = "2000"
    env["EHR_WORKER_CLASS"], env["EHR_THREADS"] = args.worker_class, str(args.threads)
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    generator = Generator(seed=SEED)
    server = Server(env, args.workers, instance / "gunicorn.log")
    results: dict[str, Any] = {"sizes": {}}
    try:
        for r in generator.facility_resources():
            httpx.put(f"{server.base}/fhir/{r['resourceType']}/{r['id']}", content=json.dumps(r), headers={"Content-Type": "application/fhir+json"}, timeout=30)
        big_id = big_patient(server, generator)
        loaded_patients = 0
        for size in args.sizes:
            target = max(1, (size - 1000) // 36)
            step = ingest(server, generator, loaded_patients, target - loaded_patients) if target > loaded_patients else {"resources_per_s": float("nan")}
            loaded_patients = max(loaded_patients, target)
            print(f"  run {run} size {size}: ingest {step['resources_per_s']:.0f} resources/s", flush=True)
            if args.db == "postgresql":
                # What autovacuum does within a minute of a bulk load (autovacuum_naptime): without
                # statistics the planner joins the index tables in the wrong order (60-70 ms instead
                # of a few for Observation by patient + date at 10k).
                analyze(db.url)
            measured = measure(server, db.url, generator, loaded_patients, big_id)
            measured["ingest_resources_per_s"] = step["resources_per_s"]
            if args.db == "postgresql" and size >= 100_000:
                measured["explain"] = explain(db.url, instance)
            results["sizes"][str(size)] = measured
        results["cpu_floor_resources_per_s"] = cpu_floor(generator)
    finally:
        server.stop()
        db.drop()
        shutil.rmtree(instance, ignore_errors=True)
    return results


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(path: list[str]) -> float:
        values = []
        for run in runs:
            node: Any = run
            for p in path:
                node = node.get(p, {}) if isinstance(node, dict) else {}
            if isinstance(node, (int, float)):
                values.append(float(node))
        return median(values)

    out: dict[str, Any] = {"cpu_floor_resources_per_s": med(["cpu_floor_resources_per_s"]), "sizes": {}}
    for size in runs[0]["sizes"]:
        sized: dict[str, Any] = {}
        for metric, value in runs[0]["sizes"][size].items():
            if metric == "explain":
                sized[metric] = value
            elif isinstance(value, dict):
                sized[metric] = {k: med(["sizes", size, metric, k]) for k in value}
            else:
                sized[metric] = med(["sizes", size, metric])
        out["sizes"][size] = sized
    return out


TARGETS = [
    ("ingest (resources/s)", lambda m: m["ingest_resources_per_s"], ">= 3000 (PostgreSQL)"),
    ("read max req/s @16", lambda m: m["read_16"]["req_per_s"], ">= 2000"),
    ("ceiling: /healthz req/s @16", lambda m: m["ceiling_16"]["req_per_s"], "(no store, no audit)"),
    ("read p50/p95/p99 ms @1", lambda m: f"{m['read_1']['p50_ms']:.1f}/{m['read_1']['p95_ms']:.1f}/{m['read_1']['p99_ms']:.1f}", ""),
    ("read p50/p95/p99 ms @4", lambda m: f"{m['read_4']['p50_ms']:.1f}/{m['read_4']['p95_ms']:.1f}/{m['read_4']['p99_ms']:.1f}", "p99 <= 5"),
    ("national ID p50/p99 ms @4", lambda m: f"{m['search_national_id_4']['p50_ms']:.1f}/{m['search_national_id_4']['p99_ms']:.1f}", "p99 <= 5"),
    ("name prefix p50/p99 ms @4", lambda m: f"{m['search_name_prefix_4']['p50_ms']:.1f}/{m['search_name_prefix_4']['p99_ms']:.1f}", "p99 <= 8"),
    ("Obs patient+date p50/p99 ms @4", lambda m: f"{m['search_obs_patient_date_4']['p50_ms']:.1f}/{m['search_obs_patient_date_4']['p99_ms']:.1f}", "p99 <= 8"),
    ("$everything 36 p50 ms", lambda m: m["everything_36_1"]["p50_ms"], "<= 15"),
    ("$everything 1000 p50 ms", lambda m: m["everything_1000_1"]["p50_ms"], "<= 60"),
    ("export (resources/s)", lambda m: m["export"]["resources_per_s"], ">= 20000"),
    ("worker RSS (MB)", lambda m: m["worker_rss_mb"], "<= 250, flat"),
    ("ICD-10 picker p50/p99 ms @4 (in process)", lambda m: f"{m['icd10_picker_4']['p50_ms']:.1f}/{m['icd10_picker_4']['p99_ms']:.1f}", "p99 < 50"),
]


def table(result: dict[str, Any]) -> str:
    sizes = list(result["sizes"])
    lines = ["| metric | " + " | ".join(f"{int(s):,} resources" for s in sizes) + " | target |", "|---" * (len(sizes) + 2) + "|"]
    for name, get, target in TARGETS:
        cells = []
        for s in sizes:
            try:
                value = get(result["sizes"][s])
                cells.append(f"{value:,.1f}" if isinstance(value, float) else str(value))
            except (KeyError, TypeError):
                cells.append("-")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {target} |")
    floor = result["cpu_floor_resources_per_s"]
    last = result["sizes"][sizes[-1]]
    lines.append(f"| CPU floor, one core (resources/s) | {floor:,.0f} | | |")
    lines.append(f"| ingest / floor (largest size) | {last['ingest_resources_per_s'] / floor:.2f} | | |")
    if "1000000" in result["sizes"] and "10000" in result["sizes"]:
        ratio = result["sizes"]["1000000"]["search_national_id_4"]["p99_ms"] / result["sizes"]["10000"]["search_national_id_4"]["p99_ms"]
        lines.append(f"| national ID p99 cost(1M)/cost(10k) | {ratio:.2f} | | <= 1.5 |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--sizes", default="10000,100000", type=lambda v: [int(x) for x in v.split(",")])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"], help="gunicorn worker class")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker (gthread)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--picker-only", action="store_true", help="only the ICD-10 picker row (no server, no database)")
    args = parser.parse_args()
    if args.picker_only:
        print(json.dumps(picker_latency()))
        return
    runs = []
    for run in range(args.runs):
        print(f"run {run + 1}/{args.runs} on {args.db}", flush=True)
        runs.append(one_run(args, run + 1))
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "db": args.db, "workers": args.workers, "worker_class": args.worker_class, "threads": args.threads, "runs": args.runs, "median": aggregate(runs), "all_runs": runs,
        "command": " ".join(["bench/run.py", *sys.argv[1:]]),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{result['date'][:10]}-{args.db}-{args.worker_class}{args.threads}.json"
    path.write_text(json.dumps(result, indent=1))
    print(table(result["median"]))
    print(f"\nJSON: {path}")
    bad = [(run_no, size, shape) for run_no, one in enumerate(runs, 1) for size, m in one["sizes"].items()
           for shape, plan in (m.get("explain") or {}).items() if not plan["uses_index"] or plan["seq_scans_of_index_tables"]]
    if bad:
        print(f"EXPLAIN: a search shape does not use its index (run, size, shape): {bad}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
