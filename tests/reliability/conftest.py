"""Reliability harness: shared fixtures.

Short tier (default, runs in the normal suite and CI): small loads, ~1-2 minutes in all on SQLite.
Long tier: `EHR_LONG_RELIABILITY=1` (its tests are skipped otherwise).
Every server is gunicorn with 4 workers on the test database (SQLite file or the PostgreSQL
database of EHR_TEST_DATABASE_URL), started from a warm launcher (see zygote.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import inspect, text

from reliability import canaries as canary_scan
from reliability.crash import FHIR, CrashRun, run_trials
from reliability.server import Launcher, server_env

LONG = os.environ.get("EHR_LONG_RELIABILITY") == "1"
long_tier = pytest.mark.skipif(not LONG, reason="long reliability tier: set EHR_LONG_RELIABILITY=1")

# Tier parameters: (trials, client threads, kill window in seconds)
CRASH_SHORT = (20, 4, (0.15, 1.0))
CRASH_LONG = (1000, 8, (0.05, 2.0))


@pytest.fixture(scope="session")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    launch = Launcher(tmp_path_factory.mktemp("launcher") / "launcher.log")
    try:
        yield launch
    finally:
        launch.close()


def sqlite_path(app_config: dict[str, Any]) -> Path | None:
    url = str(app_config["EHR_DATABASE_URL"])
    return Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None


@dataclass
class LeakReport:
    scanned_files: int
    scanned_bytes: int
    hits: dict[str, list[str]]
    patterns: int
    sources: list[str] = field(default_factory=list)


@dataclass
class CrashOutcome:
    run: CrashRun
    leak: LeakReport
    export_resources: int
    dialect: str
    checks_config: dict[str, str]


def _pg_state(engine: Any) -> dict[str, Any]:
    """Where the PostgreSQL server keeps this database's files and its log, and how big the log is now."""
    with engine.connect() as conn:
        data_dir = conn.execute(text("SHOW data_directory")).scalar()
        oid = conn.execute(text("SELECT oid FROM pg_database WHERE datname = current_database()")).scalar()
        wal = conn.execute(text("SELECT pg_walfile_name(pg_current_wal_lsn())")).scalar()
    logs = sorted(Path("/var/log/postgresql").glob("postgresql-*.log")) if Path("/var/log/postgresql").is_dir() else []
    return {"data_dir": Path(str(data_dir)), "oid": oid, "wal_start": str(wal), "logs": {p: p.stat().st_size for p in logs if os.access(p, os.R_OK)}}


def durability_settings(engine: Any) -> dict[str, str]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            return {"journal_mode": str(conn.exec_driver_sql("PRAGMA journal_mode").scalar()),
                    "synchronous": str(conn.exec_driver_sql("PRAGMA synchronous").scalar())}
        return {"synchronous_commit": str(conn.execute(text("SHOW synchronous_commit")).scalar()),
                "fsync": str(conn.execute(text("SHOW fsync")).scalar())}


def run_export(launcher: Launcher, env: dict[str, str], log: Path) -> int:
    """A Bulk export through a server with its job runner, files downloaded; returns resources."""
    server = launcher.start({**env, "EHR_JOB_RUNNER": "1", "EHR_JOB_POLL_SECONDS": "0.2"}, log)
    try:
        with server.client(headers=FHIR) as http:
            kick = http.get("/fhir/$export", headers={"Prefer": "respond-async"})
            assert kick.status_code == 202, kick.text[:500]
            status_url = kick.headers["content-location"].replace(server.base, "")
            deadline = time.monotonic() + 120
            while True:
                r = http.get(status_url)
                if r.status_code == 200:
                    break
                assert r.status_code == 202 and time.monotonic() < deadline, (r.status_code, r.text[:300])
                time.sleep(0.2)
            count = 0
            for item in r.json()["output"]:
                count += len(http.get(item["url"].replace(server.base, "")).text.splitlines())
    finally:
        server.stop()
    return count


def search_with_canaries(launcher: Launcher, env: dict[str, str], log: Path, values: dict[str, str]) -> None:
    """Searches carrying the canaries (GET query strings and POST _search bodies): they must not
    reach any log or file either."""
    server = launcher.start(env, log)
    try:
        with server.client(headers=FHIR) as http:
            for params in ({"identifier": f"https://fhir.ehr-vn.org/sid/cccd|{values['cccd']}"}, {"name": values["name"]}, {"phone": values["phone"]}):
                assert http.get("/fhir/Patient", params=params).status_code == 200
                assert http.post("/fhir/Patient/_search", data=params, headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 200
    finally:
        server.stop()


def leak_scan(engine: Any, files: list[Path], pg: dict[str, Any] | None, values: dict[str, str], work: Path) -> LeakReport:
    pats = canary_scan.patterns(values)
    sources = ["server files"]
    blobs: list[Path] = []
    wal_scanned: list[str] = []
    wal_bytes = 0
    wal_hits: dict[str, list[str]] = {}
    if pg is not None:
        # What the database server holds for this database: a pg_dump, every value read back raw
        # (a dump shows bytea as hex), the relation files after a checkpoint, the WAL written during
        # the run, and the server log written during the run.
        dump = shutil.which("pg_dump")
        if dump:
            url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            out = work / "pg_dump.sql"
            out.write_bytes(subprocess.run([dump, "--data-only", url], check=True, capture_output=True).stdout)
            blobs.append(out)
            sources.append("pg_dump")
        raw = work / "pg_values.bin"
        with engine.connect() as conn, open(raw, "wb") as fh:
            for table in inspect(engine).get_table_names():
                for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                    for v in row:
                        fh.write((v if isinstance(v, bytes) else str(v).encode()) + b"\n")
        blobs.append(raw)
        sources.append("raw values")
        # The WAL first (a checkpoint recycles segments): names sort in write order (timeline, log,
        # segment), so the run wrote those from its start to now (the ones still on disk are copied).
        with engine.connect() as conn:
            wal_end = str(conn.execute(text("SELECT pg_walfile_name(pg_current_wal_lsn())")).scalar())
        wal = pg["data_dir"] / "pg_wal"
        if os.access(wal, os.R_OK):
            for segment in sorted(wal.iterdir()):
                if len(segment.name) == 24 and pg["wal_start"] <= segment.name <= wal_end:
                    try:
                        data = segment.read_bytes()
                    except FileNotFoundError:
                        continue
                    wal_scanned.append(segment.name)
                    wal_bytes += len(data)
                    found = canary_scan.scan_bytes(data, pats)
                    if found:
                        wal_hits[str(segment)] = found
            sources.append(f"{len(wal_scanned)} WAL segments of the run ({pg['wal_start']}..{wal_end})")
        with engine.connect() as conn:
            conn.execute(text("CHECKPOINT"))
        base = pg["data_dir"] / "base" / str(pg["oid"])
        if os.access(base, os.R_OK):
            files += [p for p in base.rglob("*") if p.is_file()]
            sources.append(f"relation files {base}")
        for log, size in pg["logs"].items():
            with open(log, "rb") as fh:
                fh.seek(size)
                part = work / f"pg-log-{log.name}"
                part.write_bytes(fh.read())
            blobs.append(part)
            sources.append(f"server log {log} (the part written during the run)")
    everything = sorted(set(files)) + blobs
    hits = canary_scan.scan_files(everything, pats) | wal_hits
    size = wal_bytes
    for p in everything:
        try:
            size += p.stat().st_size
        except FileNotFoundError:  # a relation file dropped meanwhile
            pass
    return LeakReport(len(everything) + len(wal_scanned), size, hits, len(pats), sources)


def crash_outcome(app: Any, app_config: dict[str, Any], launcher: Launcher, work: Path, trials: int, clients: int,
                  window: tuple[float, float], seed: int) -> CrashOutcome:
    engine = app.extensions["ehr.store"].engine
    settings = durability_settings(engine)
    pg = None
    if engine.dialect.name == "postgresql":
        pg = _pg_state(engine)
    run_tmp = work / "tmp"
    run_tmp.mkdir()
    env = server_env(app_config, TMPDIR=str(run_tmp))
    log = work / "gunicorn.log"
    db_file = sqlite_path(app_config)
    run = run_trials(launcher, env, log, work / "journal.jsonl", trials, seed, clients, window, db_file)
    exported = run_export(launcher, env, work / "gunicorn-export.log")
    search_with_canaries(launcher, env, log, run.canaries.items())
    instance = Path(app_config["EHR_INSTANCE_PATH"])
    files = [p for p in instance.rglob("*") if p.is_file()]
    files += [p for p in run_tmp.rglob("*") if p.is_file()]
    files += [log, work / "gunicorn-export.log", launcher.log]
    if db_file is not None:
        files += [Path(f"{db_file}{suffix}") for suffix in ("", "-wal", "-shm", "-journal")]
    leak = leak_scan(engine, [p for p in files if p.exists()], pg, run.canaries.items(), work)
    return CrashOutcome(run, leak, exported, engine.dialect.name, settings)


@pytest.fixture(scope="session")
def crash_short(app: Any, app_config: dict[str, Any], launcher: Launcher, tmp_path_factory: pytest.TempPathFactory) -> CrashOutcome:
    trials, clients, window = CRASH_SHORT
    return crash_outcome(app, app_config, launcher, tmp_path_factory.mktemp("crash-short"), trials, clients, window, seed=20261124)


@pytest.fixture(scope="session")
def crash_long(app: Any, app_config: dict[str, Any], launcher: Launcher, tmp_path_factory: pytest.TempPathFactory) -> CrashOutcome:
    trials, clients, window = CRASH_LONG
    return crash_outcome(app, app_config, launcher, tmp_path_factory.mktemp("crash-long"), trials, clients, window, seed=7)

