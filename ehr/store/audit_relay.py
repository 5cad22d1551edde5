"""One audit writer for all the workers: read records travel over a Unix socket to a relay (a
thread of the job runner) that commits everything that arrived meanwhile in one transaction,
then acknowledges each record. A read is answered only after its acknowledgement, so the audit
stays fail-closed; what changes is that 16 concurrent reads in 4 worker processes cost one commit
instead of 16, and the workers no longer queue for the database's write lock one by one.

Why: the benchmark (bench/README.md) measured reads by id at 1,813 req/s with `disclosed` patched out
and 698 req/s with a commit per read on this 2-core machine; the commit, not the read, was the cost.

Failure handling: a worker that cannot reach the relay (not running, restarting, socket gone)
commits the record itself (`GroupCommitter`, as without a relay). If the relay accepted a record
but its acknowledgement did not arrive, the worker commits it again: a disclosure may then be
recorded twice, never zero times. A relay that cannot commit answers an error and the worker
fails closed (`AuditUnavailable`), as it would on its own.

Frames: a 4-byte big-endian length, then JSON: `{"id": n, "rows": [...]}` one way, `{"id": n,
"ok": true}` or `{"id": n, "ok": false, "error": "..."}` back. Byte fields are base64. The socket is
created with mode 0600 in the instance folder (only the service's user can connect).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import queue
import socket
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from ehr.store.audit import AuditUnavailable, GroupCommitter, insert_rows

log = logging.getLogger("ehr.audit.relay")

_HEADER = struct.Struct(">I")
_MAX_FRAME = 1 << 20  # a read's records are a few hundred bytes; anything near this is not ours
_BYTES = ("detail", "source_hash")


def _encode(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: (base64.b64encode(v).decode() if k in _BYTES and v is not None else v) for k, v in r.items()} for r in rows]


def _decode(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: (base64.b64decode(v) if k in _BYTES and v is not None else v) for k, v in r.items()} for r in rows]


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    body = json.dumps(message, separators=(",", ":")).encode()
    sock.sendall(_HEADER.pack(len(body)) + body)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(n - got)
        if not chunk:
            raise ConnectionError("the peer closed the connection")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _recv(sock: socket.socket) -> dict[str, Any]:
    (length,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    if length > _MAX_FRAME:
        raise ConnectionError("frame too large")
    message = json.loads(_recv_exact(sock, length))
    if not isinstance(message, dict):
        raise ConnectionError("not a frame")
    return message


# --- the relay (in the job runner) ---------------------------------------------------------------


@dataclass
class _Item:
    conn: socket.socket
    lock: threading.Lock
    ident: Any
    rows: list[dict[str, Any]]


class RelayServer:
    """Accepts worker connections; one committer thread writes what queued up, then acknowledges."""

    def __init__(self, engine: Engine, path: Path) -> None:
        self.engine = engine
        self.path = path
        self._queue: queue.Queue[_Item] = queue.Queue()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()

    def start(self) -> None:
        self.path.unlink(missing_ok=True)  # left behind by a runner that was killed
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            listener.bind(str(self.path))
        finally:
            os.umask(old)
        listener.listen(256)
        self._listener = listener
        threading.Thread(target=self._accept, name="audit-relay-accept", daemon=True).start()
        threading.Thread(target=self._commit, name="audit-relay-commit", daemon=True).start()
        log.info("audit relay listening")

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
        self.path.unlink(missing_ok=True)
        with self._conns_lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed by stop()
            with self._conns_lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), name="audit-relay-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        lock = threading.Lock()
        try:
            while True:
                message = _recv(conn)
                rows = message.get("rows")
                if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                    raise ConnectionError("bad rows")
                self._queue.put(_Item(conn, lock, message.get("id"), _decode(rows)))
        except (OSError, ValueError):
            # the worker went away (or sent garbage); records already queued still commit, and
            # their acknowledgements fail to send (that worker commits them itself)
            with self._conns_lock:
                self._conns.discard(conn)
            conn.close()

    def _commit(self) -> None:
        while True:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            error = None
            try:
                with self.engine.begin() as conn:
                    insert_rows(conn, [r for item in batch for r in item.rows])
            except Exception as exc:  # noqa: BLE001 - every waiting worker is told, and fails closed
                error = type(exc).__name__
                log.warning("audit relay commit failed: %s", error)
            for item in batch:
                reply = {"id": item.ident, "ok": error is None} | ({"error": error} if error else {})
                try:
                    with item.lock:
                        _send(item.conn, reply)
                except OSError:
                    pass


# --- the client (in each worker) -------------------------------------------------------------------


class RelayedAudit:
    """`write(rows)` returns once the rows are durable: through the relay when it answers, else
    through this process's own group commit."""

    def __init__(self, path: Path, local: GroupCommitter, timeout: float = 5.0) -> None:
        self.path = path
        self.local = local
        self.timeout = timeout
        self._tls = threading.local()
        self._counter = 0
        self._counter_lock = threading.Lock()
        self._down_until = 0.0  # after a failed connect, do not try again for a second
        self._opened: list[socket.socket] = []

    @property
    def relayed(self) -> bool:
        """Whether the last write of this thread went through the relay (for tests and logs)."""
        return bool(getattr(self._tls, "relayed", False))

    def _connection(self) -> socket.socket:
        sock: socket.socket | None = getattr(self._tls, "sock", None)
        if sock is not None and getattr(self._tls, "pid", None) == os.getpid():
            return sock
        if time.monotonic() < self._down_until:
            raise ConnectionRefusedError("the relay was not reachable a moment ago")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # a forked worker opens its own
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
        except OSError:
            sock.close()
            self._down_until = time.monotonic() + 1.0
            raise
        self._tls.sock, self._tls.pid = sock, os.getpid()
        with self._counter_lock:
            self._opened.append(sock)
        return sock

    def close(self) -> None:
        """Close every connection this client opened (threads that ended leave theirs behind)."""
        with self._counter_lock:
            opened, self._opened = self._opened, []
        for sock in opened:
            sock.close()

    def _drop(self) -> None:
        sock = getattr(self._tls, "sock", None)
        self._tls.sock = None
        if sock is not None and getattr(self._tls, "pid", None) == os.getpid():
            sock.close()
            with self._counter_lock:
                if sock in self._opened:
                    self._opened.remove(sock)

    def write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        with self._counter_lock:
            self._counter += 1
            ident = self._counter
        self._tls.relayed = False
        try:
            sock = self._connection()
            _send(sock, {"id": ident, "rows": _encode(rows)})
            reply = _recv(sock)
        except (OSError, ValueError):
            self._drop()
            self.local.write(rows)  # not reached, or unacknowledged: durable here instead
            return
        if reply.get("id") != ident:
            self._drop()  # out of step: start a fresh connection next time
            self.local.write(rows)
            return
        self._tls.relayed = bool(reply.get("ok"))
        if not reply.get("ok"):
            raise AuditUnavailable(str(reply.get("error") or "relay"))
