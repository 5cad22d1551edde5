"""Encrypted, checksummed, online backups of the store; verified restore; the shred log.

Backup: every table of `ALL_TABLES` except the ephemeral ones (`EXCLUDED`), read in ONE read
transaction (SQLite: a WAL read transaction, a consistent snapshot of the file while writers go
on; PostgreSQL: a REPEATABLE READ, read-only snapshot), table by table, rows streamed. Rows become
JSON lines (bytes as `{"$b": base64}`), portable between SQLite and PostgreSQL. The stream is cut
into chunks sealed with AES-256-GCM under a fresh random backup key, which the master key
provider's primary key wraps: without the master key the file yields nothing.

File layout (integers big-endian):

    b"EHRBAK01" | u32 header length | header (JSON: format, backup id, master key id, wrapped key,
                                              chunk size)
    chunks:  u8 flags (1 = the final chunk) | u32 length | 12-byte nonce | ciphertext + tag
             associated data: SHA-256 of the header, the chunk's index, its flags
    trailer: b"EHRBEND1" | SHA-256 of every byte before the trailer (checkable without the key)

The plaintext stream: per table `{"table", "columns"}`, one JSON array per row, then
`{"end", "rows", "sha256"}` (SHA-256 of the table's row lines); last a manifest (tables with row
counts and checksums, schema revision from alembic_version, creation time, audit-chain head).
Modified, reordered, truncated or foreign chunks fail authentication; a file cut after a whole
chunk lacks the final chunk; the header is bound into every chunk.

Restore reads the file twice: a first pass verifies all of it (chunks, checksums, manifest) and
writes nothing; the second inserts it, table by table, one transaction per batch, into an EMPTY
database migrated to the backup's schema revision, then resets PostgreSQL's sequences.

Crypto-shredding reaches backups through the shred log: every shred appends the destroyed
compartment id (a random patient id, no personal data) to a file outside the database
(`EHR_SHRED_LOG`, append-only, fsync'd, written before the shred commits), and restore erases every
compartment of the current log while it loads: their data keys arrive destroyed, their index rows
are dropped. A backup older than a shred thus never brings the patient back, as long as the shred
log is kept (off the host, with the master key backups).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import struct
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Integer, Table, insert, inspect, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from ehr.crypto.keyring import KeyError_, UnknownMasterKey
from ehr.services.context import AccessContext
from ehr.store import audit
from ehr.store.access import INTERNAL
from ehr.store.keys import now_us
from ehr.store.runtime import Store
from ehr.store.schema import ALL_TABLES, INDEX_TABLES, data_keys, metadata

FORMAT = "ehr-backup/1"
MAGIC = b"EHRBAK01"
TRAILER = b"EHRBEND1"
NONCE_BYTES = 12
DEFAULT_CHUNK = 1 << 20  # plaintext bytes per chunk: memory stays bounded by this and the largest row
MAX_CHUNK = 64 << 20
MAX_HEADER = 64 << 10
_FINAL = 1

# Tables left out, and why. Restoring them would be wrong or harmful, and losing them costs nothing.
EXCLUDED = {
    "sessions": "web sign-in sessions: restoring them would revive cookies; users sign in again",
    "form_drafts": "forms kept across a session expiry (24 h, sealed); restored only at the next sign-in",
    "login_failures": "sign-in throttling counters of the last hour",
    "client_jtis": "replay guard of client assertions (each valid for minutes)",
    "write_locks": "rows used only as locks; writers recreate them on demand",
    "access_tokens": "bearer tokens of system clients (minutes); clients request new ones",
    "export_jobs": "Bulk Data export jobs (24 h); their files are not in the backup",
    "export_subjects": "which patients each export job's files hold (they go with the jobs)",
}


class BackupError(Exception):
    """The backup or restore cannot run; the message says why (no data, no key material)."""


class BackupInvalid(BackupError):
    """The backup file is damaged, truncated, modified, or was not made with this master key."""


# --- the shred log -----------------------------------------------------------------------------

_SHRED_LINE = re.compile(r"^([A-Za-z0-9\-.]{1,64}) (\S+)$")


def shred_log_path(store: Store | None = None) -> Path | None:
    """Where shreds are logged: `store.shred_log` if set, else the running app's `EHR_SHRED_LOG`
    (default `<instance>/shred.log`), else the environment's `EHR_SHRED_LOG`; None when unknown.

    The shred log is operator configuration outside the Store, so this one lookup consults the
    Flask app when one is active (imported lazily: the service layer does not depend on Flask)."""
    configured = getattr(store, "shred_log", None)
    if configured:
        return Path(configured)
    try:
        from flask import current_app, has_app_context
    except ImportError:  # pragma: no cover - Flask is a dependency
        has_app_context = None  # type: ignore[assignment]
    if has_app_context is not None and has_app_context():
        value = current_app.config.get("EHR_SHRED_LOG")
        return Path(value) if value else Path(current_app.instance_path) / "shred.log"
    value = os.environ.get("EHR_SHRED_LOG")
    return Path(value) if value else None


def append_shred(path: Path, compartment: str) -> None:
    """Append one shred (the compartment id and the time) and fsync it; raises OSError on failure."""
    line = f"{compartment} {datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}\n".encode("ascii")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)  # one write of a short line with O_APPEND: never interleaved
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        _fsync_dir(path.parent)


@dataclass
class ShredLog:
    compartments: list[str]
    incomplete: int = 0  # a last line without its newline: an append cut short (its shred did not commit)


def read_shred_log(path: Path) -> ShredLog:
    """Compartments of the shred log, in order, once each. Unreadable lines are refused."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    incomplete = 1 if lines and lines[-1].strip() else 0
    seen: dict[str, None] = {}
    for number, raw in enumerate(lines[:-1], 1):
        if not raw.strip():
            continue
        match = _SHRED_LINE.match(raw.decode("ascii", errors="replace").strip())
        if match is None:
            raise BackupError(f"shred log {path}: line {number} is unreadable; repair it from the off-host copy before restoring")
        seen.setdefault(match.group(1), None)
    return ShredLog(list(seen), incomplete)


# --- encoding ----------------------------------------------------------------------------------


def _tag(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$b": binascii.b2a_base64(value, newline=False).decode("ascii")}
    raise TypeError(f"a {type(value).__name__} value cannot be backed up")


_ENCODE = json.JSONEncoder(default=_tag, ensure_ascii=True, separators=(",", ":")).encode


def _untag(obj: dict[str, Any]) -> Any:
    if obj.keys() == {"$b"}:
        return base64.b64decode(obj["$b"], validate=True)
    raise ValueError("unexpected object in a row")


_DECODE_ROW = json.JSONDecoder(object_hook=_untag).decode


def _control(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":"), sort_keys=True).encode() + b"\n"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _key_aad(backup_id: str) -> bytes:
    return f"ehr-backup-key|1|{backup_id}".encode()


def _chunk_aad(header_digest: bytes, index: int, flags: int) -> bytes:
    return b"ehr-backup|1|" + header_digest + struct.pack(">QB", index, flags)


class _ChunkWriter:
    """Buffers the plaintext stream and writes it as sealed chunks (and hashes what it writes)."""

    def __init__(self, fh: BinaryIO, key: bytes, header_digest: bytes, chunk_bytes: int, file_hash: Any) -> None:
        self._fh = fh
        self._aead = AESGCM(key)
        self._digest = header_digest
        self._size = chunk_bytes
        self._hash = file_hash
        self._buffer = bytearray()
        self.index = 0
        self.plain_bytes = 0

    def write(self, data: bytes) -> None:
        self._buffer += data
        self.plain_bytes += len(data)
        while len(self._buffer) >= self._size:
            self._emit(bytes(self._buffer[: self._size]), 0)
            del self._buffer[: self._size]

    def close(self) -> None:
        self._emit(bytes(self._buffer), _FINAL)
        self._buffer.clear()

    def _emit(self, plain: bytes, flags: int) -> None:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plain, _chunk_aad(self._digest, self.index, flags))
        record = struct.pack(">BI", flags, len(sealed)) + nonce + sealed
        self._fh.write(record)
        self._hash.update(record)
        self.index += 1


# --- backup ------------------------------------------------------------------------------------


@dataclass
class TableSummary:
    name: str
    rows: int
    sha256: str
    columns: list[str] = field(default_factory=list)


@dataclass
class BackupReport:
    path: Path
    backup_id: str
    created_at: str
    schema_revision: str
    tables: list[TableSummary]
    file_bytes: int
    file_sha256: str  # of the whole file, as `sha256sum` prints it
    seconds: float

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


def backed_up_tables() -> list[Table]:
    """The tables a backup holds, parents before children (the order restore inserts them)."""
    wanted = {t.name for t in ALL_TABLES} - set(EXCLUDED)
    return [t for t in metadata.sorted_tables if t.name in wanted]


def _check_coverage(conn: Connection) -> None:
    """Refuse to back up a database holding a table this module does not know (a new migration
    whose table is missing from ALL_TABLES would otherwise be left out silently)."""
    known = {t.name for t in ALL_TABLES} | {"alembic_version"}
    unknown = sorted(set(inspect(conn).get_table_names()) - known)
    if unknown:
        raise BackupError(f"tables unknown to the backup: {', '.join(unknown)} (add them to ALL_TABLES or to EXCLUDED)")


def _revision(conn: Connection) -> str:
    try:
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except Exception:  # noqa: BLE001 - no alembic_version: not a migrated database
        raise BackupError("the database has no alembic_version: migrate it with `flask db upgrade`") from None
    if len(rows) != 1:
        raise BackupError("the database has no single schema revision in alembic_version")
    return str(rows[0])


def _snapshot(engine: Engine) -> Connection:
    conn = engine.connect()
    if engine.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    conn.info["ehr_write"] = False  # SQLite: a deferred BEGIN; the first SELECT fixes the snapshot
    return conn


def backup(
    store: Store,
    ctx: AccessContext,
    path: Path,
    *,
    chunk_bytes: int = DEFAULT_CHUNK,
    batch: int = 1000,
) -> BackupReport:
    """Write an encrypted, checksummed backup of the live database to `path` (never overwritten)."""
    if not 1024 <= chunk_bytes <= MAX_CHUNK:
        raise BackupError(f"chunk size must be between 1 KiB and {MAX_CHUNK >> 20} MiB")
    path = Path(path)
    if path.exists():
        raise BackupError(f"{path} exists: a backup never overwrites a file")
    started = time.monotonic()
    backup_id = str(uuid.uuid4())
    backup_key = AESGCM.generate_key(bit_length=256)
    try:
        master_key_id, wrapped = store.master.wrap(backup_key, _key_aad(backup_id))
    except KeyError_ as exc:
        raise BackupError(f"the master key cannot wrap the backup key: {exc}") from None
    header = _control(
        {"format": FORMAT, "backup_id": backup_id, "master_key_id": master_key_id,
         "wrapped_key": base64.b64encode(wrapped).decode(), "chunk_bytes": chunk_bytes, "cipher": "AES-256-GCM"}
    )
    head = MAGIC + struct.pack(">I", len(header)) + header
    header_digest = hashlib.sha256(head).digest()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # a new folder: owner only; the file is 0600
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=str(path.parent))
    tmp = Path(tmp_name)
    summaries: list[TableSummary] = []
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb", buffering=1 << 20) as fh:
            file_hash = hashlib.sha256(head)
            fh.write(head)
            writer = _ChunkWriter(fh, backup_key, header_digest, chunk_bytes, file_hash)
            created = datetime.now(UTC)
            conn = _snapshot(store.engine)
            try:
                with conn.begin():
                    revision = _revision(conn)  # the snapshot starts here: every table below is read in it
                    _check_coverage(conn)
                    audit_head = conn.execute(text("SELECT seq, mac FROM audit_chain ORDER BY seq DESC LIMIT 1")).first()
                    for table in backed_up_tables():
                        summaries.append(_dump_table(conn, table, writer, batch))
            finally:
                conn.close()
            manifest = {
                "format": FORMAT, "backup_id": backup_id, "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "created_us": int(created.timestamp() * 1_000_000), "schema_revision": revision,
                "source_dialect": store.engine.dialect.name, "excluded": sorted(EXCLUDED),
                "tables": [{"name": s.name, "columns": s.columns, "rows": s.rows, "sha256": s.sha256} for s in summaries],
                "audit_head": {"seq": int(audit_head[0]), "mac": bytes(audit_head[1]).hex()} if audit_head else None,
            }
            writer.write(_control({"manifest": manifest}))
            writer.close()
            trailer = TRAILER + file_hash.digest()
            fh.write(trailer)
            file_hash.update(trailer)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # unlike a rename, never replaces a file that appeared meanwhile
        except FileExistsError:
            raise BackupError(f"{path} appeared while the backup ran: not overwritten") from None
        tmp.unlink()
        _fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    report = BackupReport(
        path=path, backup_id=backup_id, created_at=manifest["created_at"], schema_revision=revision, tables=summaries,
        file_bytes=path.stat().st_size, file_sha256=file_hash.hexdigest(), seconds=time.monotonic() - started,
    )
    with store.writing(INTERNAL) as uow:
        audit.append(
            uow, store.keys, action="backup.create", outcome="success", principal=ctx.principal,
            detail={"backup_id": backup_id, "rows": report.rows, "bytes": report.file_bytes, "sha256": report.file_sha256},
        )
    return report


def _dump_table(conn: Connection, table: Table, writer: _ChunkWriter, batch: int) -> TableSummary:
    columns = [c.name for c in table.columns]
    writer.write(_control({"table": table.name, "columns": columns}))
    digest = hashlib.sha256()
    rows = 0
    result = conn.execution_options(yield_per=batch).execute(select(table).order_by(*table.primary_key.columns))
    encode = _ENCODE
    for part in result.partitions(batch):
        lines = b"".join([encode(list(row)).encode("ascii") + b"\n" for row in part])
        digest.update(lines)
        writer.write(lines)
        rows += len(part)
    summary = TableSummary(table.name, rows, digest.hexdigest(), columns)
    writer.write(_control({"end": table.name, "rows": rows, "sha256": summary.sha256}))
    return summary


# --- reading a backup --------------------------------------------------------------------------


@dataclass
class Manifest:
    backup_id: str
    created_at: str
    schema_revision: str
    source_dialect: str
    tables: list[TableSummary]
    audit_head: dict[str, Any] | None
    master_key_id: str
    file_sha256: str = ""

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


def _read_exact(fh: BinaryIO, n: int, what: str) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise BackupInvalid(f"the backup file is truncated ({what} is cut short)")
    return data


class _Reader:
    """Opens a backup: header, backup key, then the decrypted chunks in order, every check made."""

    def __init__(self, path: Path, store: Store) -> None:
        self.path = Path(path)
        self.store = store

    def chunks(self, info: dict[str, Any]) -> Iterator[bytes]:
        try:
            fh = open(self.path, "rb")
        except OSError as exc:
            raise BackupError(f"cannot open {self.path}: {exc.strerror}") from None
        with fh:
            magic = fh.read(len(MAGIC))
            if magic != MAGIC:
                raise BackupInvalid(f"{self.path} is not an ehr backup file (or its first bytes were modified)")
            (length,) = struct.unpack(">I", _read_exact(fh, 4, "the header"))
            if length > MAX_HEADER:
                raise BackupInvalid("the backup header is damaged (impossible length)")
            header_bytes = _read_exact(fh, length, "the header")
            head = magic + struct.pack(">I", length) + header_bytes
            file_hash = hashlib.sha256(head)
            header_digest = hashlib.sha256(head).digest()
            try:
                header = json.loads(header_bytes)
                if header.get("format") != FORMAT:
                    raise BackupInvalid(f"unknown backup format {str(header.get('format'))[:40]!r}")
                backup_id, master_key_id = str(header["backup_id"]), str(header["master_key_id"])
                wrapped = base64.b64decode(header["wrapped_key"], validate=True)
                chunk_bytes = int(header["chunk_bytes"])
            except (ValueError, KeyError, TypeError, AttributeError):
                raise BackupInvalid("the backup header is damaged or was modified") from None
            if not 0 < chunk_bytes <= MAX_CHUNK:
                raise BackupInvalid("the backup header is damaged (impossible chunk size)")
            info.update(backup_id=backup_id, master_key_id=master_key_id)
            try:
                key = self.store.master.unwrap(master_key_id, wrapped, _key_aad(backup_id))
            except UnknownMasterKey:
                raise BackupInvalid(
                    f"this backup's key is wrapped by master key {master_key_id}, which this server does not hold: "
                    "restore needs the master key (file or EHR_MASTER_KEY[_PREVIOUS]) of the service that made the backup"
                ) from None
            except KeyError_:
                raise BackupInvalid(
                    "the backup key does not open with this server's master key: wrong master key, or the header was modified"
                ) from None
            aead = AESGCM(key)
            index = 0
            while True:
                start = fh.read(5)
                if len(start) < 5:
                    raise BackupInvalid(f"the backup file is truncated: it ends after {index} chunks, before the final one")
                flags, size = struct.unpack(">BI", start)
                if flags not in (0, _FINAL) or not 16 <= size <= chunk_bytes + 16:
                    raise BackupInvalid(f"chunk {index} of the backup is damaged or was modified (bad chunk header)")
                nonce = _read_exact(fh, NONCE_BYTES, f"chunk {index}")
                sealed = _read_exact(fh, size, f"chunk {index}")
                file_hash.update(start + nonce + sealed)
                try:
                    plain = aead.decrypt(nonce, sealed, _chunk_aad(header_digest, index, flags))
                except InvalidTag:
                    raise BackupInvalid(
                        f"chunk {index} of the backup failed authentication: the file was modified or damaged"
                    ) from None
                index += 1
                yield plain
                if flags & _FINAL:
                    break
            trailer = fh.read(len(TRAILER) + 32)
            if len(trailer) < len(TRAILER) + 32 or trailer[: len(TRAILER)] != TRAILER:
                raise BackupInvalid("the backup file is truncated or damaged: its checksum trailer is missing")
            if fh.read(1):
                raise BackupInvalid("the backup file has extra bytes after its end")
            if trailer[len(TRAILER):] != file_hash.digest():
                raise BackupInvalid("the backup file's SHA-256 checksum does not match its content")
            file_hash.update(trailer)
            info["file_sha256"] = file_hash.hexdigest()


def _lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Complete lines (with their newline) of the decrypted stream, across chunk borders."""
    rest = b""
    for chunk in chunks:
        data = rest + chunk if rest else chunk
        end = data.rfind(b"\n")
        if end < 0:
            rest = data
            continue
        rest = data[end + 1 :]
        start = 0
        while start <= end:
            stop = data.index(b"\n", start)
            yield data[start : stop + 1]
            start = stop + 1
    if rest:
        raise BackupInvalid("the backup stream ends inside a record")


@dataclass
class _Event:
    kind: str  # "table", "rows", "end"
    table: str
    columns: list[str] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)


def _events(path: Path, store: Store, info: dict[str, Any], group: int = 1000) -> Iterator[_Event]:
    """The verified record stream: every table's rows in groups, then the manifest in `info`.

    Every structural rule and checksum is checked here; any failure raises BackupInvalid."""
    seen: list[TableSummary] = []
    current: TableSummary | None = None
    digest: Any = None
    pending: list[bytes] = []
    manifest: dict[str, Any] | None = None
    for line in _lines(_Reader(path, store).chunks(info)):
        if manifest is not None:
            raise BackupInvalid("the backup stream has records after its manifest")
        if line[:1] == b"[":
            if current is None:
                raise BackupInvalid("the backup stream has a row outside any table")
            digest.update(line)
            current.rows += 1
            pending.append(line)
            if len(pending) >= group:
                yield _Event("rows", current.name, lines=pending)
                pending = []
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise BackupInvalid("the backup stream has an unreadable record") from None
        if not isinstance(record, dict):
            raise BackupInvalid("the backup stream has an unreadable record")
        if "table" in record:
            if current is not None:
                raise BackupInvalid(f"table {current.name} has no end record")
            current = TableSummary(str(record["table"]), 0, "", [str(c) for c in record.get("columns", [])])
            digest = hashlib.sha256()
            yield _Event("table", current.name, columns=current.columns)
        elif "end" in record:
            if current is None or record["end"] != current.name:
                raise BackupInvalid("the backup stream has an end record without its table")
            if pending:
                yield _Event("rows", current.name, lines=pending)
                pending = []
            current.sha256 = digest.hexdigest()
            if record.get("rows") != current.rows or record.get("sha256") != current.sha256:
                raise BackupInvalid(f"table {current.name}: row count or SHA-256 does not match its checksum record")
            yield _Event("end", current.name)
            seen.append(current)
            current = None
        elif "manifest" in record:
            if current is not None:
                raise BackupInvalid(f"table {current.name} has no end record")
            manifest = record["manifest"]
        else:
            raise BackupInvalid("the backup stream has an unknown record")
    if manifest is None:
        raise BackupInvalid("the backup stream has no manifest")
    listed = [(t.get("name"), t.get("rows"), t.get("sha256"), t.get("columns")) for t in manifest.get("tables", [])]
    if listed != [(t.name, t.rows, t.sha256, t.columns) for t in seen]:
        raise BackupInvalid("the backup manifest does not match the tables in the file")
    if manifest.get("backup_id") != info.get("backup_id") or manifest.get("format") != FORMAT:
        raise BackupInvalid("the backup manifest belongs to another backup")
    info["manifest"] = Manifest(
        backup_id=str(manifest["backup_id"]), created_at=str(manifest.get("created_at")),
        schema_revision=str(manifest.get("schema_revision")), source_dialect=str(manifest.get("source_dialect")),
        tables=seen, audit_head=manifest.get("audit_head"), master_key_id=str(info.get("master_key_id")),
    )


def verify_file(store: Store, path: Path) -> Manifest:
    """Read and check all of a backup without writing anything; returns its manifest."""
    info: dict[str, Any] = {}
    for _ in _events(path, store, info):
        pass
    manifest: Manifest = info["manifest"]
    manifest.file_sha256 = info.get("file_sha256", "")
    return manifest


# --- restore -----------------------------------------------------------------------------------


@dataclass
class RestoreReport:
    manifest: Manifest
    rows: int
    shred_log: Path | None
    shred_entries: int
    shreds_applied: int  # data keys the backup still held that arrived destroyed
    index_rows_dropped: int
    seconds: float
    notes: list[str] = field(default_factory=list)


def _target_state(conn: Connection) -> tuple[str, list[str]]:
    """The target's schema revision and the tables of ALL_TABLES holding rows."""
    revision = _revision(conn)
    filled = [t.name for t in ALL_TABLES if conn.execute(select(text("1")).select_from(t).limit(1)).first() is not None]
    return revision, filled


def restore(
    store: Store,
    ctx: AccessContext,
    path: Path,
    *,
    shred_log: Path | None,
    batch: int = 1000,
) -> RestoreReport:
    """Verify the whole backup, then load it into this (empty, migrated) database, erasing on the
    way in every compartment of the shred log. `shred_log=None` means: there is none (the caller
    has made the operator say so)."""
    started = time.monotonic()
    engine = store.engine
    with engine.connect() as conn:
        revision, filled = _target_state(conn)
        conn.rollback()
    if filled:
        raise BackupError(
            f"the target database is not empty (rows in {', '.join(filled[:5])}{', ...' if len(filled) > 5 else ''}): "
            "restore only into a new database migrated with `flask db upgrade`"
        )
    shreds = read_shred_log(shred_log) if shred_log is not None else ShredLog([])
    notes = []
    if shreds.incomplete:
        notes.append("the shred log's last line is incomplete (an interrupted shred that did not commit): ignored")
    manifest = verify_file(store, path)  # pass 1: everything checked, nothing written
    if manifest.schema_revision != revision:
        raise BackupError(
            f"the backup has schema revision {manifest.schema_revision}, this database {revision}: migrate a new empty "
            f"database to {manifest.schema_revision} (`flask db upgrade {manifest.schema_revision}`), restore, then upgrade"
        )
    tables = {t.name: t for t in metadata.sorted_tables}
    for summary in manifest.tables:
        table = tables.get(summary.name)
        if table is None or summary.name in EXCLUDED or summary.name not in {t.name for t in ALL_TABLES}:
            raise BackupError(f"the backup holds table {summary.name}, which this version does not restore")
        missing = set(summary.columns) - {c.name for c in table.columns}
        if missing:
            raise BackupError(f"table {summary.name}: columns {', '.join(sorted(missing))} are not in this database")

    erase = set(shreds.compartments)
    index_names = {t.name for t in INDEX_TABLES}
    destroyed_at = now_us()
    erased: set[str] = set()  # compartments whose data key the backup still held
    dropped = restored = 0
    info: dict[str, Any] = {}
    columns: list[str] = []
    table: Table | None = None
    try:
        for event in _events(path, store, info, group=batch):  # pass 2: checked again while loading
            if event.kind == "table":
                if info.get("backup_id") != manifest.backup_id:
                    raise BackupInvalid("another backup file is now at this path")
                table, columns = tables[event.table], event.columns
                continue
            if event.kind != "rows":
                continue
            assert table is not None
            rows = []
            for line in event.lines:
                row = dict(zip(columns, _DECODE_ROW(line.decode("ascii"))))
                compartment = row.get("compartment")
                if compartment in erase:
                    if table.name in index_names:
                        dropped += 1
                        continue
                    if table is data_keys and row.get("wrapped") is not None:
                        row.update(wrapped=None, master_key_id=None, destroyed_at=destroyed_at)
                        erased.add(compartment)
                rows.append(row)
            if rows:
                try:
                    with store.writing(INTERNAL) as uow:  # one transaction per table batch
                        uow.conn.execute(insert(table), rows)
                except SQLAlchemyError as exc:  # the driver's message may quote row values: name the kind only
                    raise BackupError(
                        f"writing table {table.name} failed ({type(getattr(exc, 'orig', exc)).__name__}): the database is "
                        "partly restored; drop it, create a new one and restore again"
                    ) from None
                restored += len(rows)
    except BackupInvalid as exc:
        raise BackupInvalid(f"{exc} (the file changed after it was verified: the database is partly restored; "
                            "drop it, create a new one and restore again)") from None
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            _reset_sequences(conn)
            conn.execute(text("ANALYZE"))
    with store.writing(INTERNAL) as uow:
        for compartment in sorted(erased):  # the erasures this database now holds, on its own trail
            audit.append(uow, store.keys, action="keys.shred", outcome="reapplied", principal=ctx.principal, compartment=compartment,
                         detail={"source": "shred log", "backup_id": manifest.backup_id})
        audit.append(
            uow, store.keys, action="backup.restore", outcome="success", principal=ctx.principal,
            detail={"backup_id": manifest.backup_id, "rows": restored, "shreds_reapplied": len(erased), "shred_log_entries": len(erase)},
        )
    return RestoreReport(
        manifest=manifest, rows=restored, shred_log=shred_log, shred_entries=len(erase), shreds_applied=len(erased),
        index_rows_dropped=dropped, seconds=time.monotonic() - started, notes=notes,
    )


def _reset_sequences(conn: Connection) -> None:
    """Point every serial/identity sequence past the restored ids (rows were inserted with theirs)."""
    for table in backed_up_tables():
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or pk[0].autoincrement is False or not isinstance(pk[0].type, Integer):
            continue
        column = pk[0].name
        conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence(:t, :c), COALESCE((SELECT max({column}) FROM {table.name}), 0) + 1, false)"
            ),
            {"t": table.name, "c": column},
        )


def restart_checkpoints(engine: Engine, path: Path, head_file: Path | None = None) -> str | None:
    """After a restore: keep the audit checkpoint file and the head file usable for the restored chain.

    A head newer than the restored chain head (the backup predates it) would stop the sealer
    (`ChainBroken`) and fail every verify: such a file is moved aside (kept, renamed); the
    checkpoint file starts again at the restored head, and the head file names it. Returns what
    was done, or None."""
    aside = _set_aside_if_newer(engine, path)
    note = f"the audit checkpoint file held heads newer than the restored chain: moved to {aside}" if aside else None
    if head_file is not None and (head_aside := _set_aside_if_newer(engine, head_file)):
        note = (note + "; " if note else "") + f"the audit head file named a newer head: moved to {head_aside}"
    point = audit.checkpoint(engine, path)
    if point is not None and head_file is not None:
        audit.record_head(head_file, point[0], bytes.fromhex(point[1]))
    if point is not None and note is None:
        note = f"audit checkpoint file {path} now ends at the restored head {point[0]}"
    elif point is not None:
        note += f"; a new one starts at the restored head {point[0]}"
    return note


def _set_aside_if_newer(engine: Engine, path: Path) -> Path | None:
    """Rename a checkpoint or head file whose last head the chain does not hold; the new name, or None."""
    last = audit.last_checkpoint(path)
    if last is None:
        return None
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT mac FROM audit_chain WHERE seq = :s"), {"s": last[0]}).scalar()
    if stored is not None and bytes(stored) == last[1]:
        return None
    aside = path.with_name(f"{path.name}.before-restore-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    os.replace(path, aside)
    return aside
