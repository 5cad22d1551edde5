"""Bulk Data export (FHIR Bulk Data Access IG 2.0): system, Patient and Group level.

Kick-off stores a job in the database and returns at once; a job runner process (started by the
gunicorn master, `python -m ehr.jobs`) does the work outside the request workers. A runner claims
a job with a lease, writes one ndjson file per type as a sequence of AES-GCM chunks under a key
of the job's own (wrapped by the master key), and checkpoints after every chunk: if it dies, the
next runner truncates the file to the last checkpoint and goes on. Files are served only to the
requester and deleted when the job expires or is cancelled.

An export contains only what the requester may read: every resource passes the same policy check
as a read.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import struct
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from ehr.crypto.envelope import DataKey, generate_data_key
from ehr.fhir.outcomes import FhirError, Issue, bad_request, not_found
from ehr.fhir.resources import SERVED_TYPES
from ehr.fhir.references import PATIENT_PATHS
from ehr.services.common import check_id, format_instant, parse_instant
from ehr.services.context import AccessContext
from ehr.services import auditing, policy
from ehr.services.policy import authorize
from ehr.store import exports, repository
from ehr.store.access import INTERNAL
from ehr.store.keys import now_us
from ehr.store.runtime import Store
from ehr.store.uow import UnitOfWork

OUTPUT_FORMATS = {"application/fhir+ndjson", "application/ndjson", "ndjson"}
PATIENT_TYPES = sorted({"Patient", *PATIENT_PATHS} & SERVED_TYPES)
_LENGTH = struct.Struct(">I")


@dataclass(frozen=True)
class ExportSettings:
    directory: Path
    ttl_seconds: int = 24 * 3600
    lease_seconds: int = 30
    batch: int = 1000


def _job_aad(job_id: str) -> bytes:
    return f"ehr-export-key|1|{job_id}".encode()


def _chunk_aad(job_id: str, resource_type: str, index: int) -> bytes:
    return f"ehr-export|1|{job_id}|{resource_type}|{index}".encode()


# --- kick-off, status, cancel, download ------------------------------------------------------------


def kick_off(store: Store, ctx: AccessContext, level: str, group_id: str | None, params: dict[str, str | None], request_url: str) -> str:
    fmt = params.get("_outputFormat")
    if fmt is not None and fmt not in OUTPUT_FORMATS:
        raise bad_request("_outputFormat must be application/fhir+ndjson", "_outputFormat")
    types = [t.strip() for t in (params.get("_type") or "").split(",") if t.strip()]
    for t in types:
        if t not in SERVED_TYPES:
            raise bad_request("_type names a resource type that is not served", "_type")
    since = parse_instant(params["_since"], "_since") if params.get("_since") else None
    if types:
        for t in types:
            authorize(ctx, "read", t)
    elif not any(policy.may(ctx, "read", t) for t in (sorted(SERVED_TYPES) if level == "system" else PATIENT_TYPES)):
        authorize(ctx, "read", "*")  # refuses: nothing this context may export
    # Without _type, the export holds every type the context may read (the runner filters).
    if level == "group":
        assert group_id is not None
        check_id(group_id)
        with store.reading(policy.gate(ctx)) as uow:
            current = repository.current(uow, "Group", group_id)
            if current is None:
                raise not_found("the Group is not known")
            try:
                repository.check_visible(uow, current.compartment, current.created_by_org, "Group")
            except repository.Invisible:
                raise policy.not_visible("export", "Group", group_id, "the Group is not known") from None
    job_id = str(uuid.uuid4())
    master_id, wrapped = store.master.wrap(generate_data_key(), _job_aad(job_id))
    now = now_us()
    with store.writing(policy.gate(ctx)) as uow:
        exports.insert_job(uow, dict(
            job_id=job_id, requester=ctx.principal, level=level, group_id=group_id, types=",".join(types) or None,
            since_us=since, request_url=request_url, status="queued", transaction_time=now, created_at=now,
            master_key_id=master_id, wrapped_key=wrapped, context=ctx.to_json(),
        ))
        auditing.queued(uow, store, ctx, "export.start", resource_type="Group" if group_id else None, logical_id=group_id)
    return job_id


def _job_for(store: Store, ctx: AccessContext, job_id: str) -> dict[str, Any]:
    with store.reading(policy.gate(ctx)) as uow:
        job = exports.get(uow, job_id)
    # Another requester's job looks like no job at all.
    if job is None or job["requester"] != ctx.principal or job["status"] == "cancelled":
        raise not_found("no such export job")
    if job["expires_at"] is not None and job["expires_at"] < now_us():
        raise not_found("the export has expired")
    return job


@dataclass
class Status:
    done: bool
    progress: str
    manifest: dict[str, Any] | None = None
    error: str | None = None


def status(store: Store, ctx: AccessContext, job_id: str, file_url: str) -> Status:
    job = _job_for(store, ctx, job_id)
    progress = json.loads(job["progress"] or "{}")
    if job["status"] == "failed":
        return Status(True, "failed", error=job["error"] or "export failed")
    if job["status"] != "completed":
        done = len(progress.get("done", []))
        total = len(progress.get("types", [])) or "?"
        count = sum(f["count"] for f in progress.get("files", {}).values())
        return Status(False, f"{job['status']}: {done}/{total} types, {count} resources")
    output = [
        {"type": t, "url": f"{file_url}/{job_id}/{t}.ndjson", "count": f["count"]}
        for t, f in sorted(progress.get("files", {}).items()) if f["count"]
    ]
    manifest = {
        "transactionTime": format_instant(job["transaction_time"]),
        "request": job["request_url"],
        "requiresAccessToken": True,
        "output": output,
        "error": [],
    }
    return Status(True, "completed", manifest)


def cancel(store: Store, ctx: AccessContext, job_id: str, settings: ExportSettings) -> None:
    _job_for(store, ctx, job_id)
    with store.writing(policy.gate(ctx)) as uow:
        exports.set_status(uow, job_id, "cancelled")
    shutil.rmtree(settings.directory / job_id, ignore_errors=True)


def open_file(store: Store, ctx: AccessContext, job_id: str, resource_type: str, settings: ExportSettings) -> Iterator[bytes]:
    """Decrypted ndjson of one finished file, chunk by chunk (only for the job's requester)."""
    job = _job_for(store, ctx, job_id)
    files = json.loads(job["progress"] or "{}").get("files", {})
    if job["status"] != "completed" or not (files.get(resource_type) or {}).get("count"):  # only files the manifest lists
        raise not_found("no such export file")
    key = DataKey(job_id, store.master.unwrap(job["master_key_id"], job["wrapped_key"], _job_aad(job_id)))
    path = settings.directory / job_id / f"{resource_type}.ndjson.enc"
    expected = files[resource_type]["bytes"]
    # The file's patients were recorded chunk by chunk when it was written; this records who took it.
    auditing.disclosed(store, ctx, "export.download", resource_type=resource_type, logical_id=job_id)

    def chunks() -> Iterator[bytes]:
        with open(path, "rb") as fh:
            index = 0
            while fh.tell() < expected:
                (length,) = _LENGTH.unpack(fh.read(_LENGTH.size))
                yield key.open(fh.read(length), _chunk_aad(job_id, resource_type, index))
                index += 1

    return chunks()


# --- the runner ------------------------------------------------------------------------------------


def run_pending(store: Store, settings: ExportSettings, owner: str | None = None) -> bool:
    """Claim one job and run it to the end (or until cancelled). True when a job was run."""
    owner = owner or f"{os.uname().nodename}:{os.getpid()}:{secrets.token_hex(4)}"
    lease = settings.lease_seconds * 1_000_000
    with store.writing(INTERNAL) as uow:
        job_id = exports.claim(uow, owner, now_us(), lease)
        job = exports.get(uow, job_id) if job_id else None
    if job is None:
        return False
    try:
        _run(store, settings, job, owner)
    except _Cancelled:
        shutil.rmtree(settings.directory / job["job_id"], ignore_errors=True)
    except Exception as exc:  # noqa: BLE001 - the job fails, the runner lives on
        with store.writing(INTERNAL) as uow:
            exports.finish(uow, job["job_id"], owner, "failed", now_us(), now_us() + settings.ttl_seconds * 1_000_000, type(exc).__name__)
    return True


class _Cancelled(Exception):
    pass


def _types(store: Store, job: dict[str, Any]) -> list[str]:
    wanted = job["types"].split(",") if job["types"] else None
    base = sorted(SERVED_TYPES) if job["level"] == "system" else PATIENT_TYPES
    return [t for t in base if wanted is None or t in wanted]


def _group_members(store: Store, ctx: AccessContext, group_id: str) -> list[str]:
    with store.reading(policy.gate(ctx)) as uow:
        try:
            version = repository.read_current(uow, store.keys, "Group", group_id)
        except repository.Invisible:
            return []
    if version is None or version.body is None:
        return []
    members = []
    for member in json.loads(version.body).get("member") or ():
        ref = (member.get("entity") or {}).get("reference", "")
        if ref.startswith("Patient/"):
            members.append(ref.split("/")[1])
    return members


def _run(store: Store, settings: ExportSettings, job: dict[str, Any], owner: str) -> None:
    job_id = job["job_id"]
    key = DataKey(job_id, store.master.unwrap(job["master_key_id"], job["wrapped_key"], _job_aad(job_id)))
    progress = json.loads(job["progress"] or "{}")
    progress.setdefault("types", _types(store, job))
    progress.setdefault("done", [])
    progress.setdefault("files", {})
    # The requester's rights, evaluated now: a consent revoked since the kick-off is honoured.
    ctx = AccessContext.from_json(job["context"]) if job["context"] else AccessContext(principal=job["requester"], kind="system")
    gate = policy.gate(ctx)
    members = _group_members(store, ctx, job["group_id"]) if job["level"] == "group" else None
    folder = settings.directory / job_id
    settings.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.mkdir(mode=0o700, exist_ok=True)  # files of patient data (encrypted): owner only
    for rtype in progress["types"]:
        if rtype in progress["done"]:
            continue
        state = progress["files"].setdefault(rtype, {"after": "", "chunks": 0, "bytes": 0, "count": 0})
        path = folder / f"{rtype}.ndjson.enc"
        with _append(path) as fh:
            fh.truncate(state["bytes"])  # drop whatever a dead runner wrote after its last checkpoint
        while True:
            with store.reading(gate) as uow:
                keys = exports.export_keys(uow, rtype, state["after"], settings.batch, job["since_us"], job["level"], members)
                read = repository.read_many(uow, store.keys, keys)
            if not keys:
                break
            chosen = [read[k] for k in keys if k in read and read[k].body] if policy.may(ctx, "read", rtype) else []
            lines = b"".join(v.body + b"\n" for v in chosen)  # type: ignore[operator]
            if lines:
                auditing.disclosed(store, ctx, "export", resource_type=rtype, logical_id=job_id, versions=chosen)
                blob = key.seal(lines, _chunk_aad(job_id, rtype, state["chunks"]))
                with _append(path) as fh:
                    fh.write(_LENGTH.pack(len(blob)) + blob)
                    fh.flush()
                    os.fsync(fh.fileno())
                state["chunks"] += 1
                state["bytes"] += _LENGTH.size + len(blob)
                state["count"] += lines.count(b"\n")
            state["after"] = keys[-1][1]
            _checkpoint(store, job_id, owner, progress, settings, {v.compartment for v in chosen if v.compartment})
        progress["done"].append(rtype)
        _checkpoint(store, job_id, owner, progress, settings)
    with store.writing(INTERNAL) as uow:
        exports.finish(uow, job_id, owner, "completed", now_us(), now_us() + settings.ttl_seconds * 1_000_000)


def _append(path: Path) -> BinaryIO:
    """An export file opened for appending, created with mode 0600 (never readable by others)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")


def _checkpoint(store: Store, job_id: str, owner: str, progress: dict[str, Any], settings: ExportSettings,
                patients: set[str] | None = None) -> None:
    with store.writing(INTERNAL) as uow:
        alive = exports.checkpoint(uow, job_id, owner, json.dumps(progress), now_us() + settings.lease_seconds * 1_000_000)
        if alive and patients:
            exports.add_subjects(uow, job_id, patients)
    if not alive:
        raise _Cancelled(job_id)


def cleanup(store: Store, settings: ExportSettings) -> int:
    """Delete the files and rows of expired or cancelled jobs."""
    with store.writing(INTERNAL) as uow:
        gone = exports.expired(uow, now_us())
        for job_id in gone:
            exports.remove(uow, job_id)
    for job_id in gone:
        shutil.rmtree(settings.directory / job_id, ignore_errors=True)
    return len(gone)


def cancel_for_revoked(uow: UnitOfWork, patient_id: str, organizations: set[str] | None, keep: set[str] = frozenset()) -> list[str]:
    """Cancel the export jobs of these organizations (None: of every organization) whose files
    hold this patient, in the revoking transaction: their status and files answer 404 at once, a
    running job stops at its next checkpoint, and the job runner deletes the files (`cleanup`).

    A job is cancelled whole, even where the organization may still see the patient by other
    rights (its own writes): it asks again and gets what it may see now.
    """
    cancelled = []
    for job in exports.holding(uow, patient_id):
        org = AccessContext.from_json(job["context"]).organization if job["context"] else None
        if org is not None and org not in keep and (organizations is None or org in organizations):
            exports.set_status(uow, job["job_id"], "cancelled")
            cancelled.append(job["job_id"])
    return cancelled


def failure(message: str) -> FhirError:
    return FhirError(500, [Issue("exception", message, severity="fatal")])
