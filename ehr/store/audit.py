"""The audit trail: append-only rows, a keyed hash chain sealed just behind them, checkpoints.

- Writes: their audit row is queued in the write's own unit of work, so it commits with the write.
- Reads: `GroupCommitter.write` blocks until the row is durable (fail closed); the rows of
  concurrent requests in one process share one commit (group commit).
- `seal` extends the chain: mac_i = HMAC(audit key, mac_(i-1) || canonical row_i), stored in
  `audit_chain`, and replaces the head file with the new head; `checkpoint` appends the head to a
  file outside the database.
- `verify` recomputes the chain: a modified, deleted, inserted or reordered row breaks it; a
  truncation leaves the head file's (or a checkpoint's) row missing. It also checks the tables the
  sealed rows vouch for (`ehr.store.audit_coverage`): audit_subjects, break_glass,
  care_relationships and the history of Consents.

Rows carry no personal data in plaintext: ids are random UUIDs; free text is encrypted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.exc import IntegrityError

from ehr.store import audit_coverage
from ehr.store.keys import CompartmentErased, DataKeyStore, now_us
from ehr.store.schema import SHARED_COMPARTMENT, audit_chain, audit_log, audit_subjects
from ehr.store.uow import UnitOfWork

_GENESIS = b"\x00" * 32
_FIELDS = ("seq", "recorded_at", "action", "outcome", "principal", "organization", "compartment", "resource_type",
           "logical_id", "request_id", "purpose", "patients", "key_id", "detail", "source_hash")


def _aad(action: str, recorded_at: int) -> bytes:
    return f"ehr-audit|1|{action}|{recorded_at}".encode()


def row(
    keys: DataKeyStore | None,
    uow: UnitOfWork | None,
    *,
    action: str,
    outcome: str,
    principal: str,
    organization: str | None = None,
    compartment: str | None = None,
    resource_type: str | None = None,
    logical_id: str | None = None,
    request_id: str | None = None,
    purpose: str | None = None,
    patients: list[str] | None = None,
    source_hash: bytes | None = None,
    detail: dict[str, Any] | None = None,
    detail_under_patient: bool = False,
) -> dict[str, Any]:
    recorded_at = now_us()
    key_id = blob = None
    if detail:
        assert keys is not None and uow is not None
        # Free text (a legal reason, a break-glass reason) may name people: it is encrypted; a
        # clinical reason goes under the patient's own key (erasing the patient erases it too).
        key = keys.for_write(uow, compartment if detail_under_patient and compartment else SHARED_COMPARTMENT)
        key_id, blob = key.key_id, key.seal(json.dumps(detail, ensure_ascii=False).encode(), _aad(action, recorded_at))
    return dict(
        recorded_at=recorded_at, action=action, outcome=outcome, principal=principal, organization=organization,
        compartment=compartment, resource_type=resource_type, logical_id=logical_id, request_id=request_id,
        purpose=purpose, patients=" ".join(sorted(set(patients))) if patients else None,
        key_id=key_id, detail=blob, source_hash=source_hash,
    )


def append(uow: UnitOfWork, keys: DataKeyStore, **fields: Any) -> None:
    """Queue an audit row in this unit of work: it commits (or rolls back) with it."""
    uow.notes.setdefault("audit_rows", []).append(row(keys, uow, **fields))
    uow.before_commit(_insert_queued)


def _insert_queued(uow: UnitOfWork) -> None:
    try:
        insert_rows(uow.conn, uow.notes.pop("audit_rows", []))
    except SQLAlchemyError as exc:  # the write rolls back with its record: nothing half-done
        raise AuditUnavailable(type(exc).__name__) from None


def subjects_of(item: dict[str, Any]) -> set[str]:
    """The patients an audit row is about: its compartment and the patients it lists."""
    return subjects(item.get("compartment"), item.get("patients"))


def subjects(compartment: str | None, patients: str | None) -> set[str]:
    """`subjects_of` from the two columns (verify derives audit_subjects from sealed rows with it)."""
    found = set((patients or "").split())
    if compartment and compartment != SHARED_COMPARTMENT:
        found.add(compartment)
    return found


def insert_rows(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert audit rows and their per-patient index rows (one statement each)."""
    if not rows:
        return
    result = conn.execute(insert(audit_log).returning(audit_log.c.seq, sort_by_parameter_order=True), rows)
    seqs = [r[0] for r in result]
    subjects = [{"patient_id": p, "seq": seq} for seq, item in zip(seqs, rows) for p in subjects_of(item)]
    if subjects:
        conn.execute(insert(audit_subjects), subjects)


def recent(
    uow: UnitOfWork,
    keys: DataKeyStore,
    action: str | None = None,
    limit: int = 50,
    patient: str | None = None,
    organization: str | None = None,
    before_seq: int | None = None,
    patients_any: list[str] | None = None,
    since_us: int | None = None,
    until_us: int | None = None,
    seq: int | None = None,
) -> list[dict[str, Any]]:
    """Newest first. `patient`/`patients_any` read through the per-patient index; `before_seq` pages."""
    stmt = select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit)
    if patient:
        stmt = stmt.where(audit_log.c.seq.in_(select(audit_subjects.c.seq).where(audit_subjects.c.patient_id == patient)))
    if patients_any is not None:
        stmt = stmt.where(audit_log.c.seq.in_(select(audit_subjects.c.seq).where(audit_subjects.c.patient_id.in_(patients_any))))
    if action:
        stmt = stmt.where(audit_log.c.action == action)
    if organization:
        stmt = stmt.where(audit_log.c.organization == organization)
    if before_seq is not None:
        stmt = stmt.where(audit_log.c.seq < before_seq)
    if since_us is not None:
        stmt = stmt.where(audit_log.c.recorded_at >= since_us)
    if until_us is not None:
        stmt = stmt.where(audit_log.c.recorded_at < until_us)
    if seq is not None:
        stmt = stmt.where(audit_log.c.seq == seq)
    return [open_row(uow, keys, item) for item in uow.execute(stmt).mappings()]


def open_row(uow: UnitOfWork, keys: DataKeyStore, item: Any) -> dict[str, Any]:
    """An audit row as a dict, its encrypted detail opened (None when the key was erased)."""
    record = {k: item[k] for k in _FIELDS if k != "detail"}
    record["detail"] = None
    if item["detail"] is not None and item["key_id"]:
        try:
            key = keys.by_id(uow, item["key_id"])
            record["detail"] = json.loads(key.open(item["detail"], _aad(item["action"], item["recorded_at"])))
        except CompartmentErased:
            record["detail"] = None
    return record


# --- group commit for reads ------------------------------------------------------------------------


@dataclass
class _Pending:
    rows: list[dict[str, Any]]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class AuditUnavailable(Exception):
    """The audit record could not be made durable: no data may leave (fail closed)."""


class GroupCommitter:
    """One writer thread per process; requests wait until their rows are committed."""

    def __init__(self, engine: Engine, timeout: float = 5.0) -> None:
        self.engine = engine
        self.timeout = timeout
        self._queue: queue.Queue[_Pending] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pid = 0

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._pid = os.getpid()  # a forked worker needs its own thread
                self._queue = queue.Queue()
                self._thread = threading.Thread(target=self._run, name="audit-group-commit", daemon=True)
                self._thread.start()

    def write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        self._ensure_thread()
        pending = _Pending(rows)
        self._queue.put(pending)
        if not pending.done.wait(self.timeout):
            raise AuditUnavailable("audit write timed out")
        if pending.error is not None:
            raise AuditUnavailable(type(pending.error).__name__)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while True:  # everything that queued up meanwhile goes in the same commit
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                with self.engine.begin() as conn:
                    insert_rows(conn, [r for p in batch for r in p.rows])
            except BaseException as exc:  # noqa: BLE001 - reported to every waiting request
                for p in batch:
                    p.error = exc
            for p in batch:
                p.done.set()


# --- the chain -------------------------------------------------------------------------------------
#
# What `verify` proves, and what it cannot:
# - every sealed row (seq <= the chain head) is covered: a modified, deleted, inserted (a seq the
#   chain does not list, gaps included) or reordered row, and a changed or forged chain mac, are each
#   reported at their row (the check re-synchronises on the stored mac and goes on);
# - a truncation (the newest rows deleted together with their chain rows) leaves the chain
#   consistent; the files kept outside the database catch it: the head file (replaced by every
#   seal that sealed rows) and the checkpoint file (appended every minute, copied off the host)
#   name a row that is gone, or whose seq was reused with another mac. Someone who can also write
#   the instance folder can roll the head file back: the checkpoint copy off the host still limits
#   an unseen cut to the rows sealed after its last line;
# - the tables the sealed rows vouch for (audit_subjects, break_glass, care_relationships, Consent
#   versions) are cross-checked against them (`ehr.store.audit_coverage`);
# - rows not sealed yet (seq > chain head; the job runner seals every second) are not covered:
#   deleting or changing them cannot be detected, and whoever can INSERT into audit_log can append
#   rows that will be sealed like the application's own;
# - an attacker who deletes the newest chain rows could let the sealer re-seal altered rows:
#   `seal(anchor=...)` refuses to extend a chain that no longer holds the anchor (the last checkpoint,
#   or the head the running sealer saw last).
#
# Sealing order is seq order. On PostgreSQL a row's seq is drawn before its transaction commits, so
# row 10 can become visible after row 11: `seal` only goes up to a seq below which every transaction
# that inserted audit rows has ended (read from pg_locks; the audit_log sequence must not be CACHEd
# above 1), otherwise the late row would look inserted. SQLite writers are serial, so seq order is
# commit order. Two sealers never fork the chain: on PostgreSQL they take an advisory lock, on
# SQLite the write transaction (BEGIN IMMEDIATE) is exclusive; the primary key of audit_chain.seq
# refuses a second mac for a row in any case.

_SEAL_LOCK = 0x6568_7261_7564_6974  # pg_advisory_xact_lock key of the sealer ("ehraudit")
_MIN_SEQ, _MAX_SEQ = -(2**63), 2**63 - 1
_BINARY = tuple(i for i, name in enumerate(_FIELDS) if name in ("detail", "source_hash"))
# Pages are read with the driver's own cursor (plain tuples, no result processing: 2x faster, and
# a value of the wrong type reaches the canonical form as it is stored). {p}: the placeholder.
# With the statistics of a freshly loaded table PostgreSQL plans a page as a scan of every row plus
# a sort (0.4 s a page at 10^6 rows): a page read forbids those plans, leaving the primary key's
# index scan, whatever the statistics say. No upper bound in SQL either (the caller stops).
_ROWS_SQL = f"SELECT {', '.join(_FIELDS)} FROM audit_log WHERE seq > {{p}} ORDER BY seq LIMIT {{p}}"
_CHAIN_SQL = "SELECT seq, mac FROM audit_chain WHERE seq > {p} ORDER BY seq LIMIT {p}"
_CHAIN_INSERT = "INSERT INTO audit_chain (seq, mac) VALUES (?, ?)"
_CHAIN_INSERT_PG = "INSERT INTO audit_chain (seq, mac) SELECT * FROM unnest(%s::bigint[], %s::bytea[])"
_WRITERS_SQL = (
    "SELECT virtualtransaction FROM pg_locks WHERE locktype = 'relation' AND relation = 'audit_log'::regclass"
    " AND mode = 'RowExclusiveLock' AND granted AND pid IS DISTINCT FROM pg_backend_pid()"
)


def _json_encoder() -> Any:
    """json.dumps(values, separators=(",", ":"), ensure_ascii=True) without building an encoder
    per call (the C encoder made once; checked against the plain one, which stays the fallback)."""
    plain = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return plain

    def refuse(value: Any) -> Any:
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    try:
        fast = make(None, refuse, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True)
        probe = [1, -(2**63), "a\u00e9\"\\\n\ud800", None, 1.5, {"blob": "00ff"}, True]
        if "".join(fast(probe, 0)) != plain(probe):
            return plain
    except Exception:  # noqa: BLE001 - another Python's internals: use the plain encoder
        return plain
    return lambda values: "".join(fast(values, 0))


_ENCODE = _json_encoder()


def _placeholder(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _fetch(conn: Connection, template: str, params: tuple[Any, ...]) -> list[Any]:
    sql = template.format(p=_placeholder(conn))
    cursor = conn.connection.cursor()
    try:
        if conn.dialect.name == "postgresql":  # for the rest of this transaction only
            cursor.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off")
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


class ChainBroken(Exception):
    """The chain no longer holds its anchor: sealing stops until an operator runs `verify`."""


class SealDelayed(Exception):
    """A transaction that inserted audit rows stayed open too long: nothing could be sealed yet."""


def _tagged(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"blob": bytes(value).hex()}
    return value


def _canonical_values(values: Any) -> bytes:
    """One row (values in `_FIELDS` order) as bytes; any change of a value or of its type changes them."""
    out = list(values)
    for i in _BINARY:
        value = out[i]
        if value is not None:
            if isinstance(value, (bytes, bytearray, memoryview)):
                out[i] = value.hex()
            else:  # only a tampered row has text in a binary column (SQLite): never equal to hex
                out[i] = {"value": value}
    try:
        return _ENCODE(out).encode()
    except (TypeError, ValueError):  # a blob where text belongs (SQLite stores what it is given)
        return _ENCODE([_tagged(v) if i not in _BINARY else v for i, v in enumerate(out)]).encode()


def _canonical(item: Any) -> bytes:
    return _canonical_values([item[name] for name in _FIELDS])


def mac(key: bytes, previous: bytes, item: Any) -> bytes:
    return hmac.digest(key, previous + _canonical(item), "sha256")


def head(uow: UnitOfWork) -> tuple[int, bytes]:
    item = uow.execute(select(audit_chain.c.seq, audit_chain.c.mac).order_by(audit_chain.c.seq.desc()).limit(1)).first()
    return (int(item[0]), bytes(item[1])) if item else (0, _GENESIS)


def sealed_head(engine: Engine) -> tuple[int, bytes] | None:
    """The chain head (seq, mac), None while nothing is sealed: the next `seal`'s anchor."""
    with UnitOfWork(engine, write=False) as uow:
        seq, value = head(uow)
    return (seq, value) if seq else None


def _horizon(engine: Engine, timeout: float) -> int | None:
    """The highest seq `seal` may go up to now; None when there is nothing new to seal.

    SQLite: any (writers are serial). PostgreSQL: the highest seq such that no transaction can
    still commit a row at or below it. Any transaction holding a seq holds ROW EXCLUSIVE on
    audit_log (taken before the seq is drawn, kept to its end): once every holder seen after
    reading max(seq) has ended, rows up to it are final. Raises SealDelayed when a holder outlives
    `timeout`."""
    with engine.connect() as conn:
        top = conn.execute(text("SELECT max(seq) FROM audit_log")).scalar()
        chained = conn.execute(text("SELECT max(seq) FROM audit_chain")).scalar()
        conn.commit()
        if top is None or (chained is not None and top <= chained):  # nothing new: no write lock, no wait
            return None
        if engine.dialect.name != "postgresql":
            return _MAX_SEQ
        writers = conn.execute(text(_WRITERS_SQL)).scalars().all()
        conn.commit()
        deadline, pause = time.monotonic() + timeout, 0.002
        while writers:
            if time.monotonic() > deadline:
                raise SealDelayed(f"a transaction that wrote audit rows is open for more than {timeout:g} s")
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
            writers = conn.execute(text(_WRITERS_SQL + " AND virtualtransaction = ANY(:v)"), {"v": list(writers)}).scalars().all()
            conn.commit()
    return int(top)


def seal(
    engine: Engine,
    key: bytes,
    batch: int = 5000,
    *,
    anchor: tuple[int, bytes] | None = None,
    settle_seconds: float = 5.0,
    head_file: Path | None = None,
) -> int:
    """Extend the chain over unsealed rows, in sequence order. Returns rows sealed.

    `anchor` (seq, mac): a chain row that must still be there (the head file's or the last
    checkpoint's, or the head this sealer saw last); raises ChainBroken otherwise, sealing nothing.
    `head_file`: replaced with the new head after each committed batch (`record_head`)."""
    postgres = engine.dialect.name == "postgresql"
    keyed = hmac.new(key, digestmod=hashlib.sha256)  # mac_i = HMAC(key, mac_(i-1) || canonical row_i)
    if anchor is not None:
        with engine.connect() as conn:
            stored = conn.execute(select(audit_chain.c.mac).where(audit_chain.c.seq == anchor[0])).scalar()
        if stored is None or not hmac.compare_digest(bytes(stored), anchor[1]):
            raise ChainBroken(f"the audit chain no longer holds row {anchor[0]} as sealed: run `flask ehr audit verify`")
    upto = _horizon(engine, settle_seconds)
    if upto is None:
        return 0
    sealed = conflicts = 0
    while True:
        try:
            with UnitOfWork(engine, write=True) as uow:  # SQLite: BEGIN IMMEDIATE, one sealer at a time
                if postgres:
                    uow.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SEAL_LOCK})
                last_seq, previous = head(uow)
                rows = [r for r in _fetch(uow.conn, _ROWS_SQL, (last_seq, batch)) if r[0] <= upto]
                if not rows:
                    return sealed
                seqs, macs = [], []
                for values in rows:
                    h = keyed.copy()
                    h.update(previous)
                    h.update(_canonical_values(values))
                    previous = h.digest()
                    seqs.append(values[0])
                    macs.append(previous)
                if postgres:  # one statement, not a round trip per row
                    uow.conn.exec_driver_sql(_CHAIN_INSERT_PG, (seqs, macs))
                else:
                    uow.conn.exec_driver_sql(_CHAIN_INSERT, list(zip(seqs, macs)))
        except IntegrityError:  # another sealer without the lock (an older version) got there first
            conflicts += 1
            if conflicts > 3:
                raise
            continue
        sealed += len(rows)
        if head_file is not None:  # after the commit: the file never names a row the chain lacks
            record_head(head_file, seqs[-1], macs[-1])


def _read_checkpoints(path: Path) -> tuple[dict[int, list[bytes]], list[str]]:
    entries: dict[int, list[bytes]] = {}
    problems = []
    for number, line in enumerate(path.read_text(encoding="ascii", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            seq_text, value_text = line.split()[:2]
            seq, value = int(seq_text), bytes.fromhex(value_text)
            if len(value) != 32:
                raise ValueError
        except ValueError:
            problems.append(f"checkpoint file line {number} is unreadable")
            continue
        entries.setdefault(seq, []).append(value)
    return entries, problems


def last_checkpoint(path: Path) -> tuple[int, bytes] | None:
    """The newest checkpoint (seq, mac) in the file (or the head in a head file), None if there is none."""
    if not path.exists():
        return None
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 4096))
        lines = fh.read().decode("ascii", errors="replace").splitlines()
    for line in reversed(lines):
        parts = line.split()
        if len(parts) >= 2:
            try:
                return int(parts[0]), bytes.fromhex(parts[1])
            except ValueError:
                return None
    return None


def checkpoint(engine: Engine, path: Path) -> tuple[int, str] | None:
    """Append the chain head to a file outside the database (an operator keeps it).

    Writes nothing when the file's last line is this head already."""
    with UnitOfWork(engine, write=False) as uow:
        seq, value = head(uow)
    if seq == 0:
        return None
    if last_checkpoint(path) == (seq, value):
        return seq, value.hex()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, _line(seq, value))
        os.fsync(fd)
    finally:
        os.close(fd)
    return seq, value.hex()


def _line(seq: int, value: bytes) -> bytes:
    return f"{seq} {value.hex()} {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n".encode("ascii")


def record_head(path: Path, seq: int, value: bytes) -> None:
    """Replace the head file with one line "seq mac time": every seal that sealed rows does, so
    rows sealed since the last checkpoint cannot be cut unseen either (`verify` compares it).

    Atomic (a temporary file, fsync'd, renamed over the old one) and private (0600). The directory
    is not fsync'd (one fsync a seal, not two): after a power loss the file may hold an older head,
    which the chain still holds, so a crash never makes a false alarm."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a leftover temporary file keeps its old mode otherwise
        os.write(fd, _line(seq, value))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def anchor_of(*paths: Path | None) -> tuple[int, bytes] | None:
    """The newest head the files name (head file, checkpoint file): what the next seal anchors on."""
    heads = [point for path in paths if path is not None and (point := last_checkpoint(path)) is not None]
    return max(heads, key=lambda point: point[0]) if heads else None


def trail_files(config: Mapping[str, Any], instance_path: str) -> tuple[Path, Path]:
    """(checkpoint file, head file): EHR_AUDIT_CHECKPOINT_FILE, default
    `<instance>/audit-checkpoints.log`; EHR_AUDIT_HEAD_FILE, default the checkpoint file's name
    plus `.head` (next to it, so an instance or a test with its own checkpoint file has its own head)."""
    configured = config.get("EHR_AUDIT_CHECKPOINT_FILE")
    checkpoints = Path(configured) if configured else Path(instance_path) / "audit-checkpoints.log"
    head = config.get("EHR_AUDIT_HEAD_FILE")
    return checkpoints, Path(head) if head else checkpoints.with_name(checkpoints.name + ".head")


@dataclass
class Verification:
    rows: int = 0
    sealed: int = 0
    unsealed: int = 0
    problems: list[str] = field(default_factory=list)
    head: int = 0  # seq of the chain head verified up to
    checkpoints: int = 0  # checkpoint lines compared
    recorded_head: int | None = None  # seq of the head file's head, when one was compared
    covered: dict[str, int] = field(default_factory=dict)  # rows of each table cross-checked with the sealed rows

    @property
    def ok(self) -> bool:
        return not self.problems


def _stream(engine: Engine, sql: str, upto: int, page: int, after: Any = _MIN_SEQ) -> Iterator[Any]:
    """Rows of `sql` with after < seq <= upto in seq order, a page per short read (keyset paging)."""
    while True:
        with engine.connect() as conn:
            rows = _fetch(conn, sql, (after, page))
        for item in rows:
            if item[0] > upto:
                return
            yield item
        if len(rows) < page:
            return
        after = rows[-1][0]


_AT = {name: i for i, name in enumerate(_FIELDS)}


_EVENT_FIELDS = ("seq", "recorded_at", "action", "outcome", "principal", "organization", "compartment", "resource_type", "logical_id")
Opener = Callable[[Any], dict[str, Any] | None]


def _event(values: Any, sealed: bool, opener: Opener | None) -> audit_coverage.Event:
    event = audit_coverage.Event(**{name: values[_AT[name]] for name in _EVENT_FIELDS}, sealed=sealed)
    if (opener is not None and event.action in audit_coverage.CARE_ACTIONS and values[_AT["detail"]] is not None
            and audit_coverage.facility_of(event) is None):  # a patient's care.end: the facility is in the detail
        named = (opener(values) or {}).get("organization")
        event = dataclasses.replace(event, named_facility=named if isinstance(named, str) else None)
    return event


def _detail_opener(engine: Engine, keys: DataKeyStore) -> Opener:
    """Opens the encrypted detail of a row given as values (only care rows that name their facility
    nowhere else come here: few); None when it cannot be opened (then the row names no facility)."""

    def opened(values: Any) -> dict[str, Any] | None:
        try:
            with UnitOfWork(engine, write=False) as uow:
                detail = open_row(uow, keys, dict(zip(_FIELDS, values)))["detail"]
        except Exception:  # noqa: BLE001 - a tampered detail is the chain's finding, not a crash
            return None
        return detail if isinstance(detail, dict) else None

    return opened


# Where each expected head comes from: a checkpoint line, or the head file (its own messages).
_CHECKPOINT, _HEAD = "checkpoint", "head"


def _expected_heads(
    checkpoints: Path | None, head_file: Path | None, report: Verification, problem: audit_coverage.Problem
) -> dict[int, list[tuple[bytes, str]]]:
    """The heads the files outside the database name, by seq (read before the database: a head
    recorded meanwhile is never asked of a chain read earlier)."""
    pending: dict[int, list[tuple[bytes, str]]] = {}
    if checkpoints is not None and checkpoints.exists():
        entries, unreadable = _read_checkpoints(checkpoints)
        for message in unreadable:
            problem(message)
        for seq, values in entries.items():
            pending.setdefault(seq, []).extend((value, _CHECKPOINT) for value in values)
        report.checkpoints = sum(len(v) for v in entries.values())
    if head_file is not None and head_file.exists():
        recorded = last_checkpoint(head_file)
        if recorded is None:
            problem(f"the head file {head_file.name} is unreadable")
        else:
            report.recorded_head = recorded[0]
            pending.setdefault(recorded[0], []).append((recorded[1], _HEAD))
    return pending


def _compare_heads(seq: int, stored: bytes, expected: list[tuple[bytes, str]], problem: audit_coverage.Problem) -> None:
    for value, source in expected:
        if not hmac.compare_digest(value, stored):
            problem(f"checkpoint of row {seq} does not match the chain (rewritten?)" if source == _CHECKPOINT
                    else f"the sealed head in the head file, row {seq}, does not match the chain (rewritten?)")


def _missing_heads(pending: dict[int, list[tuple[bytes, str]]], top: int, problem: audit_coverage.Problem) -> None:
    for seq in sorted(pending):
        if any(source == _CHECKPOINT for _, source in pending[seq]):
            problem(f"checkpoint row {seq} is gone (the trail was truncated or rolled back)")
        if any(source == _HEAD for _, source in pending[seq]):
            problem(f"sealed head row {seq} named by the head file is gone: the chain ends at row {top} (the newest sealed rows were cut?)"
                    if seq > top else f"sealed head row {seq} named by the head file is gone (deleted?)")


def _check_chain(
    engine: Engine, key: bytes, top: int, page: int, pending: dict[int, list[tuple[bytes, str]]], report: Verification,
    problem: audit_coverage.Problem, subjects: audit_coverage.SubjectIndex | None, coverage: audit_coverage.Coverage | None,
    opener: Opener | None,
) -> None:
    """audit_log and audit_chain read in lockstep by seq (two pages in memory); each sealed row
    also goes to the table checks."""
    logs, chain = _stream(engine, _ROWS_SQL, top, page), _stream(engine, _CHAIN_SQL, top, page)
    keyed, canonical, compare = hmac.new(key, digestmod=hashlib.sha256), _canonical_values, hmac.compare_digest
    watched, compartment, patients, action = audit_coverage.WATCHED, _AT["compartment"], _AT["patients"], _AT["action"]
    previous = _GENESIS
    item, link = next(logs, None), next(chain, None)
    while item is not None or link is not None:
        if link is None or (item is not None and item[0] < link[0]):
            report.sealed += 1
            problem(f"row {item[0]} is not in the chain (inserted into the sealed range?)")
            item = next(logs, None)
            continue
        seq, stored = link[0], link[1]
        stored = bytes(stored) if isinstance(stored, (bytes, bytearray, memoryview)) else b""
        if item is None or seq < item[0]:
            problem(f"sealed row {seq} is missing (deleted?)")
        else:
            report.sealed += 1
            h = keyed.copy()
            h.update(previous)
            h.update(canonical(item))
            if not compare(h.digest(), stored):
                problem(f"row {seq} does not match the chain (modified or reordered, or a row just before it removed)")
            if subjects is not None:
                subjects.check(seq, _subjects_of_values(item[compartment], item[patients]))
            if coverage is not None and item[action] in watched:
                coverage.event(_event(item, True, opener))
            item = next(logs, None)
        previous = stored  # re-synchronise: each problem is reported at its own row
        _compare_heads(seq, stored, pending.pop(seq, []), problem)
        link = next(chain, None)
    _missing_heads(pending, top, problem)


def _subjects_of_values(compartment: Any, patients: Any) -> set[str]:
    if not isinstance(compartment, (str, type(None))) or not isinstance(patients, (str, type(None))):
        return {"?"}  # a tampered type (SQLite): reported by the chain already; never crash here
    return subjects(compartment, patients)


def verify(
    engine: Engine,
    key: bytes,
    checkpoints: Path | None,
    *,
    head_file: Path | None = None,
    cover: bool = True,
    keys: DataKeyStore | None = None,
    page: int = 20000,
    max_problems: int = 100,
) -> Verification:
    """Recompute the chain over audit_log and audit_chain, compare the heads kept in the checkpoint
    file and the head file, and (`cover`) check the tables the sealed rows vouch for (`keys`: to
    read the facility a patient's care.end names in its encrypted detail)."""
    report = Verification()
    more = 0

    def problem(message: str) -> None:
        nonlocal more
        if len(report.problems) < max_problems:
            report.problems.append(message)
        else:
            more += 1

    subjects = None
    try:
        pending = _expected_heads(checkpoints, head_file, report, problem)
        with engine.connect() as conn:
            top = conn.execute(text("SELECT max(seq) FROM audit_chain")).scalar() or 0
            report.unsealed = int(conn.execute(text("SELECT count(*) FROM audit_log WHERE seq > :top"), {"top": top}).scalar_one())
        report.head = top
        coverage = audit_coverage.Coverage(problem) if cover else None
        if coverage is not None:  # after the head, before the rows (see audit_coverage)
            coverage.load(engine)
            subjects = audit_coverage.SubjectIndex(engine, top, problem, page)
        opener = _detail_opener(engine, keys) if keys is not None else None
        _check_chain(engine, key, top, page, pending, report, problem, subjects, coverage, opener)
        if subjects is not None and coverage is not None:
            subjects.finish()
            for values in _stream(engine, _ROWS_SQL, _MAX_SEQ, page, after=top):  # not sealed yet: they only explain
                if values[_AT["action"]] in audit_coverage.WATCHED:
                    coverage.event(_event(values, False, opener))
            coverage.finish(engine)
            report.covered = {"audit_subjects rows": subjects.rows, **coverage.counts()}
    except Exception as exc:  # noqa: BLE001 - unreadable data (e.g. a seq of the wrong type) fails verification
        problem(f"the audit trail could not be read: {type(exc).__name__}: {exc}")
    finally:
        if subjects is not None:
            subjects.close()
    if more:
        report.problems.append(f"... and {more} more problems")
    report.rows = report.sealed + report.unsealed
    return report


def count(uow: UnitOfWork) -> int:
    return int(uow.execute(select(func.count()).select_from(audit_log)).scalar_one())
