"""The audit relay: records from many threads reach the database through one writer, and every
failure either falls back to the worker's own commit or fails closed; never a lost record."""

from __future__ import annotations

import tempfile
import threading
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine, func, select

from ehr.store import audit
from ehr.store.audit_relay import RelayedAudit, RelayServer
from ehr.store.schema import audit_log, audit_subjects


@pytest.fixture
def socket_path() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="relay-") as folder:  # short: a Unix socket path has ~100 bytes
        yield Path(folder) / "audit.sock"


def _row(n: int) -> dict:
    return audit.row(None, None, action="read", outcome="success", principal=f"relay-test-{n}", compartment=str(uuid.uuid4()),
                     request_id=uuid.uuid4().hex, source_hash=bytes([n % 256]) * 32)


def _count(store, **where) -> int:
    with store.engine.connect() as conn:
        query = select(func.count()).select_from(audit_log)
        for name, value in where.items():
            query = query.where(getattr(audit_log.c, name).like(value))
        return int(conn.execute(query).scalar_one())


def test_records_from_many_threads_go_through_the_relay(app, store, socket_path):
    relay = RelayServer(store.engine, socket_path)
    relay.start()
    client = RelayedAudit(socket_path, audit.GroupCommitter(store.engine))
    used: list[bool] = []
    rows = [_row(n) for n in range(400)]

    def worker(part: list[dict]) -> None:
        for r in part:
            client.write([r])
            used.append(client.relayed)

    threads = [threading.Thread(target=worker, args=(rows[i::8],)) for i in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        relay.stop()
        client.close()
    assert used.count(True) == 400  # every record was acknowledged by the relay, none fell back
    assert _count(store, principal="relay-test-%") == 400
    with store.engine.connect() as conn:
        stored = conn.execute(select(audit_log.c.request_id, audit_log.c.source_hash)).all()
        subjects = conn.execute(select(func.count()).select_from(audit_subjects)).scalar_one()
    assert {(r["request_id"], r["source_hash"]) for r in rows} <= {tuple(s) for s in stored}  # bytes survive the trip
    assert subjects >= 400
    assert not socket_path.exists()


def test_without_a_relay_the_worker_commits_its_own_records(app, store, socket_path):
    client = RelayedAudit(socket_path, audit.GroupCommitter(store.engine))
    client.write([_row(1)])
    client.close()
    assert not client.relayed and _count(store, principal="relay-test-1") == 1


def test_a_relay_that_went_away_is_replaced_by_the_worker(app, store, socket_path):
    relay = RelayServer(store.engine, socket_path)
    relay.start()
    client = RelayedAudit(socket_path, audit.GroupCommitter(store.engine))
    client.write([_row(2)])
    assert client.relayed
    relay.stop()
    client.write([_row(3)])  # the connection is open but nobody answers on it any more
    client.close()
    assert not client.relayed
    assert _count(store, principal="relay-test-2") == 1 and _count(store, principal="relay-test-3") >= 1


def test_a_relay_that_cannot_commit_fails_closed(app, store, socket_path, tmp_path):
    broken = create_engine(f"sqlite:///{tmp_path / 'no-tables.sqlite3'}")  # no audit_log table: every commit fails
    relay = RelayServer(broken, socket_path)
    relay.start()
    client = RelayedAudit(socket_path, audit.GroupCommitter(store.engine))
    try:
        with pytest.raises(audit.AuditUnavailable):
            client.write([_row(4)])
    finally:
        relay.stop()
        client.close()
        broken.dispose()
    assert _count(store, principal="relay-test-4") == 0  # refused, not silently written elsewhere


def test_garbage_on_the_socket_does_not_stop_the_relay(app, store, socket_path):
    import socket

    relay = RelayServer(store.engine, socket_path)
    relay.start()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
            raw.connect(str(socket_path))
            raw.sendall(b"\xff\xff\xff\xffnot a frame")
        client = RelayedAudit(socket_path, audit.GroupCommitter(store.engine))
        client.write([_row(5)])
        assert client.relayed
        assert oct(socket_path.stat().st_mode & 0o777) == "0o600"
        client.close()
    finally:
        relay.stop()
    assert _count(store, principal="relay-test-5") == 1
