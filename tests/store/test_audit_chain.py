"""The audit trail's keyed hash chain (security test plan, test 31): a clean trail verifies with no
false alarm; modify, delete, insert, reorder and truncation done directly in the database (guard
triggers dropped, as an attacker with DDL rights would) are all detected; the guards refuse UPDATE
and DELETE; the CLI exits 1 on tampering; concurrent sealers build one chain."""

from __future__ import annotations

import os
import random
import secrets
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from ehr.store import audit, guards
from ehr.store.schema import audit_chain, audit_log, audit_subjects
from ehr.store.uow import UnitOfWork

# Synthetic rows: no "break-glass" or care actions here, whose rows must come with the table rows
# they record (tests/store/test_audit_coverage.py makes those through the services).
ACTIONS = ("read", "search", "create", "update", "delete", "export", "login", "authenticate")
COLUMNS = ("recorded_at", "action", "outcome", "principal", "organization", "compartment", "resource_type", "logical_id",
           "request_id", "purpose", "patients", "key_id", "detail", "source_hash")
TRIALS = 100


def _key(app) -> bytes:
    return app.extensions["ehr.secrets"].audit_key


def _id() -> str:
    return str(uuid.uuid4())


def _write(store, n: int, rng: random.Random, gaps: bool = False) -> None:
    """n rows made by the app's own writer (`audit.row` + `audit.insert_rows`), every 10th with an
    encrypted detail; `gaps`: even seqs only, as PostgreSQL leaves after rolled-back inserts."""
    with UnitOfWork(store.engine, write=True) as uow:  # the trail is written below any access gate
        first = (uow.execute(select(func.max(audit_log.c.seq))).scalar() or 0) + 1
        rows = []
        for i in range(n):
            patients = [_id() for _ in range(rng.randint(0, 3))]
            rows.append(audit.row(
                store.keys if i % 10 == 0 else None, uow if i % 10 == 0 else None,
                action=rng.choice(ACTIONS), outcome=rng.choice(("success", "denied")), principal=f"user-{rng.randrange(50)}",
                organization=f"org-{rng.randrange(5)}", compartment=_id() if rng.random() < 0.5 else None, resource_type="Observation",
                logical_id=_id(), request_id=_id(), purpose=rng.choice((None, "TREAT", "ETREAT")), patients=patients or None,
                source_hash=secrets.token_bytes(16), detail={"reason": f"reason {i}"} if i % 10 == 0 else None,
            ))
        if gaps:
            for i, item in enumerate(rows):
                item["seq"] = 2 * (first + i)
        for start in range(0, n, 10000):
            audit.insert_rows(uow.conn, rows[start:start + 10000])
        if gaps and store.engine.dialect.name == "postgresql":  # as if the sequence had drawn them
            uow.execute(text("SELECT setval(pg_get_serial_sequence('audit_log', 'seq'), (SELECT max(seq) FROM audit_log))"))


@contextmanager
def _unguarded(store) -> Iterator[None]:
    """Drop the append-only triggers (an attacker with DDL rights); always put them back."""
    dialect = store.engine.dialect.name
    with store.engine.begin() as conn:
        for statement in guards.statements(dialect, create=False):
            conn.execute(text(statement))
    try:
        yield
    finally:
        with store.engine.begin() as conn:
            # SQLite parses DDL against the connection's cached schema, refreshed only when a statement
            # reads the database: a pooled connection idle since the DROP would still see the triggers.
            conn.execute(text("SELECT count(*) FROM audit_log"))
            for statement in guards.statements(dialect, create=True):
                conn.execute(text(statement))


def _snapshot(store) -> tuple[list[dict[str, Any]], ...]:
    with store.engine.connect() as conn:
        return tuple([dict(r) for r in conn.execute(select(t)).mappings()] for t in (audit_log, audit_subjects, audit_chain))


def _restore(store, snapshot) -> None:
    with store.engine.begin() as conn:
        for table in (audit_subjects, audit_chain, audit_log):
            conn.execute(delete(table))
        for table, rows in zip((audit_log, audit_subjects, audit_chain), snapshot):
            conn.execute(insert(table), rows)


def _changed(value: Any, rng: random.Random) -> Any:
    if isinstance(value, int):
        return value + rng.choice((-1, 1, 10**6))
    if isinstance(value, (bytes, memoryview)):
        flipped = bytearray(value)
        flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        return bytes(flipped)
    if value is None:
        return "x"
    return rng.choice([v for v in (value + "x", value[:-1], "", value.swapcase(), value[::-1]) if v != value])


# --- tamper kinds: each changes the database and returns the seqs a report may name -------------------


def _modify(conn, rows, rng, trial):
    item = rng.choice(rows)
    column = COLUMNS[trial % len(COLUMNS)]  # every column class, 7 times or more each
    value = item[column]
    if column == "detail" and value is None:
        value = item["source_hash"]  # a detail where there was none
    elif value is not None and column in ("organization", "compartment", "purpose", "patients", "key_id", "source_hash") and rng.random() < 0.3:
        value = None  # a value erased
    else:
        value = _changed(value, rng)
    conn.execute(update(audit_log).where(audit_log.c.seq == item["seq"]).values({column: value}))
    return (item["seq"],)


def _delete(conn, rows, rng, trial):
    """A row deleted; half of the time its chain row too (then the next row no longer chains; the
    newest row: its checkpoint is gone)."""
    i = rng.randrange(len(rows))
    seq = rows[i]["seq"]
    conn.execute(delete(audit_log).where(audit_log.c.seq == seq))
    conn.execute(delete(audit_subjects).where(audit_subjects.c.seq == seq))
    if rng.random() < 0.5:
        conn.execute(delete(audit_chain).where(audit_chain.c.seq == seq))
        return (rows[i + 1]["seq"],) if i + 1 < len(rows) else (seq,)
    return (seq,)


def _insert(conn, rows, rng, trial):
    """A forged row at a free seq inside the sealed range (the chain has even seqs only); half
    of the time with a forged chain row, its mac made without the audit key."""
    model = rng.choice(rows)
    seq = rng.choice((model["seq"] - 1, model["seq"] + 1, -model["seq"])) if model is not rows[-1] else model["seq"] - 1
    forged = dict(model, seq=seq, principal="intruder" if rng.random() < 0.5 else model["principal"])
    conn.execute(insert(audit_log), forged)
    if rng.random() < 0.5:
        previous = conn.execute(select(audit_chain.c.mac).where(audit_chain.c.seq < seq).order_by(audit_chain.c.seq.desc()).limit(1)).scalar()
        wrong_key = secrets.token_bytes(32)
        conn.execute(insert(audit_chain), {"seq": seq, "mac": audit.mac(wrong_key, bytes(previous or b"\0" * 32), forged)})
    return (seq,)


def _reorder(conn, rows, rng, trial):
    """Two rows swap places (their contents swap seqs); sometimes their chain macs swap too."""
    a, b = rng.sample(rows, 2)
    for item, other in ((a, b), (b, a)):
        conn.execute(update(audit_log).where(audit_log.c.seq == item["seq"]).values({c: other[c] for c in COLUMNS}))
    if rng.random() < 0.5:
        macs = dict(conn.execute(select(audit_chain.c.seq, audit_chain.c.mac).where(audit_chain.c.seq.in_((a["seq"], b["seq"])))).all())
        conn.execute(update(audit_chain).where(audit_chain.c.seq == a["seq"]).values(mac=macs[b["seq"]]))
        conn.execute(update(audit_chain).where(audit_chain.c.seq == b["seq"]).values(mac=macs[a["seq"]]))
    return (a["seq"], b["seq"])


def _truncate(conn, rows, rng, trial):
    """The newest rows and their chain rows deleted after the last checkpoint (the rest of the
    chain stays consistent: only the checkpoint file can tell)."""
    cut = rows[-rng.randint(1, 50)]["seq"]
    for table in (audit_log, audit_subjects, audit_chain):
        conn.execute(delete(table).where(table.c.seq >= cut))
    return (rows[-1]["seq"],)  # the checkpointed head


KINDS = {"modify": _modify, "delete": _delete, "insert": _insert, "reorder": _reorder, "truncate": _truncate}


@pytest.mark.slow
def test_tampering_is_always_detected(app, store, tmp_path):
    rng = random.Random(int(os.environ.get("EHR_AUDIT_SEED", "31")))
    key = _key(app)
    checkpoints = tmp_path / "checkpoints.log"
    _write(store, 300, rng, gaps=True)
    assert audit.seal(store.engine, key) == 300
    assert audit.checkpoint(store.engine, checkpoints) is not None
    snapshot = _snapshot(store)
    rows = sorted(snapshot[0], key=lambda r: r["seq"])
    detected = {kind: 0 for kind in KINDS}
    located = {kind: 0 for kind in KINDS}
    with _unguarded(store):
        for kind, tamper in KINDS.items():
            for trial in range(TRIALS):
                clean = audit.verify(store.engine, key, checkpoints)
                assert clean.ok and clean.sealed == 300 and clean.unsealed == 0, (kind, trial, clean.problems)
                with store.engine.begin() as conn:
                    seqs = tamper(conn, rows, rng, trial)
                if kind == "truncate" and trial % 2:  # the application goes on writing and sealing
                    _write(store, rng.randint(1, 60), rng)
                    audit.seal(store.engine, key)
                report = audit.verify(store.engine, key, checkpoints)
                detected[kind] += not report.ok
                located[kind] += all(any(f"row {seq} " in p for p in report.problems) for seq in seqs)
                _restore(store, snapshot)
    print(f"\ntamper trials ({TRIALS} each): detected {detected}; named at the expected row {located}")
    assert detected == {kind: TRIALS for kind in KINDS}
    assert located == detected  # each change is named at its row (a truncation: at the checkpoint's)


@pytest.mark.slow
def test_clean_trail_has_no_false_alarms(app, store, tmp_path):
    """EHR_AUDIT_CLEAN_ROWS=1000000 runs the test plan's full size (default 100,000)."""
    n = int(os.environ.get("EHR_AUDIT_CLEAN_ROWS", "100000"))
    key = _key(app)
    rng = random.Random(1)
    started = time.perf_counter()
    for start in range(0, n, 50000):
        _write(store, min(50000, n - start), rng)
    written = time.perf_counter()
    assert audit.seal(store.engine, key) == n
    sealed = time.perf_counter()
    checkpoint = audit.checkpoint(store.engine, tmp_path / "checkpoints.log")
    report = audit.verify(store.engine, key, tmp_path / "checkpoints.log")
    verified = time.perf_counter()
    print(f"\n{store.engine.dialect.name}: {n} rows written in {written - started:.1f} s; "
          f"seal {n / (sealed - written):,.0f} rows/s; verify {n / (verified - sealed):,.0f} rows/s")
    assert report.problems == []
    assert (report.rows, report.sealed, report.unsealed, report.checkpoints) == (n, n, 0, 1)
    assert checkpoint is not None and report.head == checkpoint[0]

    _write(store, 5, rng)  # written after the seal: unsealed, not a problem
    report = audit.verify(store.engine, key, tmp_path / "checkpoints.log")
    assert report.ok and (report.rows, report.sealed, report.unsealed) == (n + 5, n, 5)
    assert audit.seal(store.engine, key) == 5 and audit.verify(store.engine, key, None).unsealed == 0


def test_a_changed_type_is_detected(app, store):
    """SQLite stores what it is given: hex text in a blob column, or a blob in a text column, is not
    the same row (the canonical form tags types), and never crashes the verifier."""
    if store.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL columns are typed")
    key = _key(app)
    _write(store, 4, random.Random(7))
    audit.seal(store.engine, key)
    with store.engine.connect() as conn:
        seq, source_hash, action = conn.execute(select(audit_log.c.seq, audit_log.c.source_hash, audit_log.c.action).order_by(audit_log.c.seq)).first()
    with _unguarded(store):
        for column, value in (("source_hash", source_hash.hex()), ("action", action.encode())):
            with store.engine.begin() as conn:
                original = conn.execute(text(f"SELECT {column} FROM audit_log WHERE seq = :s"), {"s": seq}).scalar()
                conn.execute(text(f"UPDATE audit_log SET {column} = :v WHERE seq = :s"), {"v": value, "s": seq})
            report = audit.verify(store.engine, key, None)
            assert report.problems == [f"row {seq} does not match the chain (modified or reordered, or a row just before it removed)"]
            with store.engine.begin() as conn:
                conn.execute(text(f"UPDATE audit_log SET {column} = :v WHERE seq = :s"), {"v": original, "s": seq})
            assert audit.verify(store.engine, key, None).ok


def test_guards_refuse_update_and_delete(app, store):
    _write(store, 3, random.Random(2))
    audit.seal(store.engine, _key(app))
    refused = []
    for table, column, value in ((audit_log, "action", "read"), (audit_subjects, "patient_id", "p"), (audit_chain, "mac", b"\0" * 32)):
        for statement in (update(table).values({column: value}), delete(table)):
            with pytest.raises(DBAPIError, match="append-only"):
                with store.engine.begin() as conn:
                    conn.execute(statement)
            refused.append(f"{statement.__class__.__name__} {table.name}")
    assert len(refused) == 6
    with store.engine.connect() as conn:  # nothing changed
        assert conn.execute(select(func.count()).select_from(audit_chain)).scalar() == 3
    assert audit.verify(store.engine, _key(app), None).ok


def test_cli_seal_verify_and_tamper(app, store, tmp_path, monkeypatch):
    checkpoints = tmp_path / "audit-checkpoints.log"
    monkeypatch.setitem(app.config, "EHR_AUDIT_CHECKPOINT_FILE", str(checkpoints))
    runner = app.test_cli_runner()
    _write(store, 20, random.Random(3))

    result = runner.invoke(args=["ehr", "audit", "seal"])
    assert result.exit_code == 0, result.output
    assert "sealed 20 rows" in result.output and len(checkpoints.read_text().splitlines()) == 1
    result = runner.invoke(args=["ehr", "audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "rows 20, sealed 20, unsealed 0" in result.output

    with store.engine.connect() as conn:
        seqs = conn.execute(select(audit_log.c.seq).order_by(audit_log.c.seq)).scalars().all()
    with store.engine.connect() as conn:
        original = conn.execute(select(audit_log.c.principal).where(audit_log.c.seq == seqs[7])).scalar_one()
    with _unguarded(store), store.engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == seqs[7]).values(principal="someone-else"))
    result = runner.invoke(args=["ehr", "audit", "verify"])
    assert result.exit_code == 1
    assert f"PROBLEM: row {seqs[7]} does not match the chain" in result.output

    # Undone; then the newest rows are deleted with their chain rows: only the checkpoint file knows.
    with _unguarded(store), store.engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == seqs[7]).values(principal=original))
        for table in (audit_log, audit_chain, audit_subjects):
            conn.execute(delete(table).where(table.c.seq >= seqs[15]))
    result = runner.invoke(args=["ehr", "audit", "verify", "--checkpoints", str(checkpoints)])
    assert result.exit_code == 1 and f"PROBLEM: checkpoint row {seqs[-1]} is gone" in result.output
    assert "rows 15, sealed 15, unsealed 0" in result.output
    result = runner.invoke(args=["ehr", "audit", "verify", "--checkpoints", str(tmp_path / "none.log")])
    assert result.exit_code == 1 and f"PROBLEM: sealed head row {seqs[-1]} named by the head file is gone" in result.output
    result = runner.invoke(args=["ehr", "audit", "verify", "--checkpoints", str(tmp_path / "none.log"), "--head", str(tmp_path / "none.head")])
    assert result.exit_code == 0 and "no checkpoint file" in result.output and "no head file" in result.output  # the documented limit
    # The sealer refuses to extend a chain that lost its checkpointed head.
    result = runner.invoke(args=["ehr", "audit", "seal"])
    assert result.exit_code == 1 and f"no longer holds row {seqs[-1]}" in result.output


def test_concurrent_sealers_build_one_chain(app, store, tmp_path):
    key = _key(app)
    errors: list[BaseException] = []
    stop = threading.Event()
    sealed = [0, 0]

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(40):
                _write(store, rng.randint(1, 20), rng)
                time.sleep(0.005)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def sealer(index: int) -> None:
        try:
            while not stop.is_set():
                sealed[index] += audit.seal(store.engine, key, batch=7)
                time.sleep(0.002)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    writers = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
    sealers = [threading.Thread(target=sealer, args=(i,)) for i in range(2)]
    for thread in writers + sealers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in sealers:
        thread.join()
    assert errors == []
    rest = audit.seal(store.engine, key)
    with store.engine.connect() as conn:
        logged = conn.execute(select(audit_log.c.seq).order_by(audit_log.c.seq)).scalars().all()
        chained = conn.execute(select(audit_chain.c.seq).order_by(audit_chain.c.seq)).scalars().all()
    assert logged == chained and sum(sealed) + rest == len(logged)
    assert all(sealed), f"both sealers should have sealed rows: {sealed}"
    report = audit.verify(store.engine, key, None)
    assert report.ok and report.sealed == len(logged), report.problems


def test_postgres_seals_only_committed_prefix(app, store):
    """A row whose seq was drawn first but commits last is not skipped over (it would look inserted)."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite writers are serial: seq order is commit order")
    key = _key(app)
    rng = random.Random(4)
    slow = store.engine.connect()
    try:
        slow.begin()
        audit.insert_rows(slow, [audit.row(None, None, action="read", outcome="success", principal="slow")])  # draws the first seq
        _write(store, 3, rng)  # later seqs, committed first
        with pytest.raises(audit.SealDelayed):
            audit.seal(store.engine, key, settle_seconds=0.2)
        slow.commit()
    finally:
        slow.close()
    assert audit.seal(store.engine, key) == 4
    assert audit.verify(store.engine, key, None).ok


def test_checkpoint_writes_only_when_the_head_moves(app, store, tmp_path: Path):
    path = tmp_path / "cp.log"
    assert audit.checkpoint(store.engine, path) is None and not path.exists()
    _write(store, 2, random.Random(5))
    audit.seal(store.engine, _key(app))
    first = audit.checkpoint(store.engine, path)
    assert audit.checkpoint(store.engine, path) == first and len(path.read_text().splitlines()) == 1
    assert audit.last_checkpoint(path) == (first[0], bytes.fromhex(first[1]))
    _write(store, 1, random.Random(6))
    audit.seal(store.engine, _key(app), anchor=audit.last_checkpoint(path))
    assert audit.checkpoint(store.engine, path)[0] > first[0] and len(path.read_text().splitlines()) == 2
