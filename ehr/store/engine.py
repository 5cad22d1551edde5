"""Database engine settings for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


# PostgreSQL statement timeout (ms) of the units of work opened while it is set: the API sets it
# per request (ehr.api.limits); the CLI and the job runner (import, export) leave it unset, so a
# bulk job is never cut by a bound meant for one request.
statement_timeout_ms: ContextVar[int | None] = ContextVar("ehr_statement_timeout_ms", default=None)


def apply_statement_timeout(conn: Any) -> None:
    """`SET LOCAL statement_timeout` for this transaction, when a request bound is in force."""
    timeout = statement_timeout_ms.get()
    if timeout and conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(timeout)}")


def is_statement_timeout(exc: BaseException) -> bool:
    """True for PostgreSQL's "canceling statement due to statement timeout" (SQLSTATE 57014)."""
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) == "57014"


def normalize_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs given without a driver (the psycopg2 default is not installed)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def sqlite_file(url: str) -> Path | None:
    """The database file of a `sqlite:///PATH` URL (None for in-memory databases and other URLs)."""
    if not url.startswith("sqlite:///"):
        return None
    name = url[len("sqlite:///") :].split("?", 1)[0]
    return Path(name) if name and name != ":memory:" else None


def private_sqlite_file(path: Path) -> None:
    """Make the SQLite file (and its -wal, -shm, -journal companions) readable by the owner only:
    created empty with mode 0600 before SQLite opens it (SQLite gives its WAL and shared-memory
    files the database file's mode), and narrowed to 0600 when an older one is wider. A new
    folder for it is made 0700."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    for candidate in (path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal"))):
        try:
            if candidate.stat().st_mode & 0o077:
                os.chmod(candidate, 0o600)
        except FileNotFoundError:
            continue
        except PermissionError:
            continue  # not ours to change (a read-only copy): left as it is


def engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        # A writer waits up to 30 s for the lock instead of failing at once with "database is locked".
        return {"connect_args": {"timeout": 30, "check_same_thread": False}}
    return {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20}


def configure(engine: Engine) -> None:
    """Install per-dialect connection settings. Idempotent per engine."""
    if engine.dialect.name != "sqlite" or getattr(engine, "_ehr_configured", False):
        return
    engine._ehr_configured = True  # type: ignore[attr-defined]

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite's own transaction handling defers BEGIN until the first write, so reads before
        # it run outside the transaction; take control and emit BEGIN ourselves (SQLAlchemy docs,
        # "Serializable isolation / Savepoints / Transactional DDL" for pysqlite).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")  # every acknowledged commit survives power loss
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        # Zero freed space, so a shredded data key or a deleted index row does not linger in free
        # pages of the file that a copy or backup would carry.
        cur.execute("PRAGMA secure_delete=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Any) -> None:
        # Writers take the write lock at BEGIN, so a conditional create's search and insert see
        # one consistent state and no writer hits SQLITE_BUSY_SNAPSHOT half-way.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("ehr_write") else "BEGIN")
