"""Backup and restore (issue 9, reliability: backup; issue 2: crypto-shredding reaches backups).

The drill: ~5k generated resources, a backup taken while another thread keeps writing, a restore
into a new empty database; every write acknowledged before the backup started reads back
identical, each concurrent transaction is there whole or not at all, the audit chain verifies, a
patient shredded after the backup stays erased, the file holds no canary. Then: a modified,
truncated or foreign-key backup is refused and writes nothing. The 100k variant runs with
EHR_LONG_RELIABILITY=1.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import flask_migrate
import pytest
from flask import Flask
from sqlalchemy import func, inspect, select
from sqlalchemy.engine import make_url

from ehr import create_app
from ehr.crypto.keyring import new_keyring, write_keyfile
from ehr.services import backup as backup_service
from ehr.services import bundles, resources
from ehr.services.context import AccessContext
from ehr.store import audit, repository
from ehr.store.access import INTERNAL
from ehr.store.schema import ALL_TABLES
from ehr.store.schema import resources as resources_table
from ehr.synthetic.generator import Generator
from fhir_helpers import created_id, post
from test_canary_scan import CANARIES, encodings

OPS = AccessContext.operator("test")
PER_PATIENT = 36  # Scale() defaults: 1 + 5 + 20 + 3 + 3 + 2 + 2

Location = tuple[str, str, int]


def _pg_admin(url: str) -> Any:
    import psycopg

    admin = make_url(url).set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    return psycopg.connect(admin, autocommit=True)


@pytest.fixture
def fresh_db(app: Flask, app_config: dict[str, Any], tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Factory: a new, empty database migrated to head, served by an app with the source's keys
    (unless overridden) and its own instance folder."""
    made: list[tuple[Flask, str | None]] = []
    source = app_config["EHR_DATABASE_URL"]

    def make(**overrides: Any) -> Flask:
        n = len(made)
        name = None
        if source.startswith("postgres"):
            name = f"{make_url(source).database}_rst{n}_{os.getpid()}"[-63:]
            with _pg_admin(source) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}"')
            url = make_url(source).set(database=name).render_as_string(hide_password=False)
        else:
            url = f"sqlite:///{tmp_path / f'restored-{n}.sqlite3'}"
        config = {**app_config, "EHR_DATABASE_URL": url, "EHR_INSTANCE_PATH": str(tmp_path / f"restored-{n}"), **overrides}
        target = create_app(config)
        made.append((target, name))
        with target.app_context():
            flask_migrate.upgrade()
        return target

    yield make
    for target, name in made:
        target.extensions["ehr.store"].engine.dispose()
        if name:
            with _pg_admin(source) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _locations(responses: list[Any]) -> list[Location]:
    out = []
    for r in responses:
        rtype, rid, _, vid = r.location.split("/")
        out.append((rtype, rid, int(vid)))
    return out


def _bodies(store: Any, locations: list[Location]) -> dict[Location, bytes | None]:
    found: dict[Location, bytes | None] = {}
    with store.reading(INTERNAL) as uow:
        for loc in locations:
            version = repository.read_version(uow, store.keys, *loc)
            found[loc] = version.body if version else None
    return found


def _live_rows(app: Flask) -> int:
    with app.extensions["ehr.store"].engine.connect() as conn:
        return sum(conn.execute(select(func.count()).select_from(t)).scalar_one() for t in ALL_TABLES)


def _drill(app: Flask, store: Any, fresh_db: Callable[..., Flask], tmp_path: Path, patients: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    shred_log = tmp_path / "shred.log"
    app.config["EHR_SHRED_LOG"] = str(shred_log)  # restored by the caller's monkeypatch
    generator = Generator(seed=23)
    for resource in generator.facility_resources():
        resources.update(store, OPS, resource["resourceType"], resource["id"], resource)
    client = app.test_client()
    c = CANARIES
    canary = created_id(post(client, {
        "resourceType": "Patient", "identifier": [{"system": "https://fhir.ehr-vn.org/sid/cccd", "value": c["cccd"]}],
        "name": [{"text": c["name"]}], "birthDate": c["birth"], "telecom": [{"system": "phone", "value": c["phone"]}],
        "address": [{"line": [c["street"]]}],
    }))
    note = created_id(post(client, {"resourceType": "Observation", "status": "final", "code": {"text": "note"},
                                    "subject": {"reference": f"Patient/{canary}"}, "valueString": c["note"]}))

    started = time.monotonic()
    acknowledged: list[Location] = []
    for bundle in generator.patients(patients):
        acknowledged += _locations(bundles.ingest_transaction(store, OPS, bundle))
    figures["load_s"] = time.monotonic() - started
    assert audit.seal(store.engine, app.extensions["ehr.secrets"].audit_key) > 0

    # A writer keeps committing patient transactions while the backup runs.
    lock, stop, errors = threading.Lock(), threading.Event(), []
    concurrent: list[tuple[float, list[Location]]] = []

    def writer() -> None:
        try:
            for bundle in generator.patients(10_000, start=patients):
                if stop.is_set():
                    return
                locations = _locations(bundles.ingest_transaction(store, OPS, bundle))
                with lock:
                    concurrent.append((time.monotonic(), locations))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    thread = threading.Thread(target=writer, name="drill-writer")
    thread.start()
    while not concurrent and thread.is_alive():
        time.sleep(0.01)
    with lock:
        before = len(concurrent)
        for _, locations in concurrent:
            acknowledged += locations
    file = tmp_path / "drill.ehrbak"
    t0 = time.monotonic()
    result = app.test_cli_runner().invoke(args=["ehr", "backup", str(file)])
    figures["backup_s"] = time.monotonic() - t0
    stop.set()
    thread.join(60)
    assert not errors and not thread.is_alive()
    assert result.exit_code == 0, result.output
    during = sum(1 for at, _ in concurrent[before:] if t0 <= at <= t0 + figures["backup_s"])
    assert during > 0, "the writer made no transaction while the backup ran"
    expected = _bodies(store, acknowledged)

    # The file: nothing readable without the master key, not even the ids.
    raw = file.read_bytes()
    figures["file_mib"] = len(raw) / 2**20
    for value in CANARIES.values():
        for form in encodings(value):
            assert form not in raw, value
    assert canary.encode() not in raw and b"Patient" not in raw
    stream = b"".join(backup_service._Reader(file, store).chunks({}))  # the positive control: it is inside
    assert canary.encode() in stream and b'"table":"resources"' in stream

    # Erased after the backup was taken: the shred log carries it to the restore.
    shredded = app.test_cli_runner().invoke(args=["ehr", "keys", "shred", canary, "--legal-reason", "court order 1/2026", "--yes"])
    assert shredded.exit_code == 0, shredded.output
    assert shred_log.read_text().split()[0] == canary

    target = fresh_db(EHR_SHRED_LOG=str(shred_log))
    t0 = time.monotonic()
    restored = target.test_cli_runner().invoke(args=["ehr", "restore", str(file)])
    figures["restore_s"] = time.monotonic() - t0
    assert restored.exit_code == 0, restored.output
    assert "1 erased patient(s) listed; re-applied 1 shred(s)" in restored.output
    target_store = target.extensions["ehr.store"]

    t0 = time.monotonic()
    got = _bodies(target_store, list(expected))
    figures["compare_s"] = time.monotonic() - t0
    assert len(expected) >= patients * PER_PATIENT
    mismatched = [loc for loc, body in expected.items() if got[loc] != body]
    assert not mismatched, f"{len(mismatched)} acknowledged versions differ, e.g. {mismatched[:3]}"
    for _, locations in concurrent:  # snapshot consistency: each transaction whole or absent
        present = _bodies(target_store, locations)
        assert len({body is None for body in present.values()}) == 1
    tc = target.test_client()
    assert tc.get(f"/fhir/Patient/{canary}").status_code == 410
    assert tc.get(f"/fhir/Observation/{note}").status_code == 410
    assert not tc.get(f"/fhir/Patient?identifier={c['cccd']}").get_json().get("entry")
    some_patient = next(loc for loc in expected if loc[0] == "Patient")
    assert tc.get(f"/fhir/Patient/{some_patient[1]}").status_code == 200
    assert post(tc, {"resourceType": "Patient", "name": [{"text": "Sau Khôi Phục"}]}).status_code == 201  # sequences moved on

    verified = target.test_cli_runner().invoke(args=["ehr", "audit", "verify"])
    assert verified.exit_code == 0 and verified.output.rstrip().endswith("ok"), verified.output
    report = audit.verify(target_store.engine, target.extensions["ehr.secrets"].audit_key, None)
    assert report.ok and report.sealed > 0
    figures["resources"] = len(expected)
    return figures


def test_backup_restore_drill(app, store, fresh_db, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "EHR_SHRED_LOG", "")
    figures = _drill(app, store, fresh_db, tmp_path, patients=139)  # 139 x 36 = 5,004 resources
    print({k: round(v, 2) for k, v in figures.items()})


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("EHR_LONG_RELIABILITY") != "1", reason="long reliability tier: EHR_LONG_RELIABILITY=1")
def test_backup_restore_drill_100k(app, store, fresh_db, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "EHR_SHRED_LOG", "")
    figures = _drill(app, store, fresh_db, tmp_path, patients=2778)  # 100,008 resources
    print({k: round(v, 2) for k, v in figures.items()})


def _chunk_ends(data: bytes) -> list[int]:
    """Offsets just after each chunk record (for cuts at a chunk border)."""
    at, ends = 12 + int.from_bytes(data[8:12], "big"), []
    while data[at:at + 8] != backup_service.TRAILER:
        at += 5 + 12 + int.from_bytes(data[at + 1:at + 5], "big")
        ends.append(at)
    return ends


def test_damaged_foreign_key_or_unlogged_backups_are_refused(app, client, store, fresh_db, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "EHR_SHRED_LOG", str(tmp_path / "shred.log"))
    for i in range(4):
        created_id(post(client, {"resourceType": "Patient", "name": [{"text": f"Phạm Văn Thử {i}"}]}))
    assert audit.seal(store.engine, app.extensions["ehr.secrets"].audit_key) > 0
    file = tmp_path / "small.ehrbak"
    result = app.test_cli_runner().invoke(args=["ehr", "backup", str(file), "--chunk-kib", "4"])
    assert result.exit_code == 0, result.output
    again = app.test_cli_runner().invoke(args=["ehr", "backup", str(file)])
    assert again.exit_code != 0 and "never overwrites" in again.output
    data = file.read_bytes()
    ends = _chunk_ends(data)
    assert len(ends) >= 3

    def flipped(at: int) -> bytes:
        return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]

    damaged = {
        "header byte": (flipped(20), "modified"),
        "chunk byte": (flipped(ends[0] + 40), "failed authentication"),
        "chunk flags": (flipped(ends[1]), "failed authentication"),
        "checksum byte": (flipped(len(data) - 3), "checksum"),
        "cut mid-chunk": (data[: ends[1] - 100], "truncated"),
        "cut at a chunk border": (data[: ends[1]], "truncated"),
        "cut before the trailer": (data[: ends[-1]], "truncated"),
        "chunks swapped": (data[: ends[0]] + data[ends[1]:ends[2]] + data[ends[0]:ends[1]] + data[ends[2]:], "failed authentication"),
        "extra bytes": (data + b"\0", "extra bytes"),
        "empty": (b"", "not an ehr backup"),
    }
    target = fresh_db()
    runner = target.test_cli_runner()
    for what, (content, message) in damaged.items():
        bad = tmp_path / f"bad-{what.replace(' ', '-')}.ehrbak"
        bad.write_bytes(content)
        out = runner.invoke(args=["ehr", "restore", "--no-shred-log", str(bad)])
        assert out.exit_code == 1 and message in out.output, (what, out.output)
        assert _live_rows(target) == 0, what

    # Without the master key that made it (another key file), the backup yields nothing.
    other_key = tmp_path / "other.key"
    write_keyfile(other_key, new_keyring(development=False))
    stranger = fresh_db(EHR_MASTER_KEY_FILE=str(other_key))
    for args in (["--check"], ["--no-shred-log"]):
        out = stranger.test_cli_runner().invoke(args=["ehr", "restore", *args, str(file)])
        assert out.exit_code == 1 and "does not hold" in out.output, out.output
    assert _live_rows(stranger) == 0

    # No shred log: refused unless the operator says there is none.
    out = runner.invoke(args=["ehr", "restore", str(file)])
    assert out.exit_code == 1 and "--no-shred-log" in out.output and _live_rows(target) == 0
    checked = runner.invoke(args=["ehr", "restore", "--check", str(file)])
    assert checked.exit_code == 0 and "ok: the backup verifies" in checked.output and _live_rows(target) == 0
    # The target's audit checkpoint file names a head the restored (older) chain does not hold: it
    # is moved aside, a new one starts at the restored head, and the chain verifies.
    checkpoints = Path(target.instance_path) / "audit-checkpoints.log"
    checkpoints.parent.mkdir(parents=True, exist_ok=True)
    checkpoints.write_text(f"999999 {'ab' * 32} 2026-01-01T00:00:00Z\n")
    good = runner.invoke(args=["ehr", "restore", "--no-shred-log", str(file)])
    assert good.exit_code == 0, good.output
    assert "moved to" in good.output and len(list(checkpoints.parent.glob("audit-checkpoints.log.before-restore-*"))) == 1
    verified = runner.invoke(args=["ehr", "audit", "verify"])
    assert verified.exit_code == 0 and "checkpoints compared 1" in verified.output, verified.output
    assert target.test_client().get("/fhir/Patient?name=pham").get_json()["total"] == 4
    twice = runner.invoke(args=["ehr", "restore", "--no-shred-log", str(file)])
    assert twice.exit_code == 1 and "not empty" in twice.output


def test_shred_log_lines(tmp_path):
    log = tmp_path / "shred.log"
    backup_service.append_shred(log, "a1b2")
    backup_service.append_shred(log, "c3d4")
    backup_service.append_shred(log, "a1b2")
    assert oct(log.stat().st_mode & 0o777) == "0o600"
    with open(log, "ab") as fh:
        fh.write(b"e5f6 2026-")  # an append cut short: its shred never committed
    parsed = backup_service.read_shred_log(log)
    assert parsed.compartments == ["a1b2", "c3d4"] and parsed.incomplete == 1
    log.write_bytes(b"a1b2 2026-01-01T00:00:00Z\n\xff\xfe garbage line\n")
    with pytest.raises(backup_service.BackupError, match="line 2"):
        backup_service.read_shred_log(log)


def test_every_table_is_backed_up_or_excluded_on_purpose(store):
    tables = set(inspect(store.engine).get_table_names()) - {"alembic_version"}
    kept = {t.name for t in backup_service.backed_up_tables()}
    assert kept | set(backup_service.EXCLUDED) == tables and not kept & set(backup_service.EXCLUDED)
    assert "data_keys" in kept and "audit_log" in kept and "resources" in kept
    order = [t.name for t in backup_service.backed_up_tables()]
    assert order.index("data_keys") < order.index("resource_versions")  # parents restored first
    assert resources_table.name in order
