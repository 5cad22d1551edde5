"""Operator key actions: master-key rotation and crypto-shredding of a patient compartment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from ehr.store.access import INTERNAL
from ehr.crypto.keyring import LocalMasterKeyProvider, add_primary, read_keyfile, write_keyfile
from ehr.fhir import jsonio
from ehr.fhir.resources import is_valid_id
from ehr.services import backup
from ehr.services.context import AccessContext
from ehr.store import audit, compartments, index, repository
from ehr.store.keys import CompartmentErased, now_us
from ehr.store.runtime import Store

DEATH_RETENTION_YEARS = 30  # records of patients who died (TT 33/2025/TT-BYT)
_YEAR_US = 365.25 * 24 * 3600 * 1_000_000


class KeyActionError(Exception):
    """The key action cannot run; the message says why."""


def new_master_key(store: Store) -> str:
    """Add a fresh primary key to the master key file (old keys stay for unwrapping)."""
    provider = store.master
    if not isinstance(provider, LocalMasterKeyProvider) or provider.path is None:
        raise KeyActionError(
            "master keys come from the environment: put the new key in EHR_MASTER_KEY and the old one in "
            "EHR_MASTER_KEY_PREVIOUS, restart the service, then run `flask ehr keys rotate`"
        )
    ring = add_primary(read_keyfile(provider.path))
    write_keyfile(provider.path, ring)
    provider.reload()  # at once: the file watcher's once-a-second check could still hold the old primary
    return ring.primary


@dataclass
class RotationReport:
    rewrapped: int
    failed: int
    primary: str


def rotate(store: Store, ctx: AccessContext, batch: int = 500, progress: Callable[[int], None] | None = None) -> RotationReport:
    """Re-wrap every data key under the primary master key, batch by batch (resumable, idempotent)."""
    if isinstance(store.master, LocalMasterKeyProvider):
        store.master.reload()
    total = failed_total = 0
    while True:  # passes until one re-wraps nothing (keys written meanwhile under an old primary)
        cursor: str | None = ""
        rewrapped_this_pass = failed_total = 0
        while cursor is not None:
            with store.writing(INTERNAL) as uow:
                done, failed, cursor = store.keys.rewrap_batch(uow, batch, cursor)
            total += done
            rewrapped_this_pass += done
            failed_total += failed
            if progress:
                progress(total)
        if rewrapped_this_pass == 0:
            break
    with store.writing(INTERNAL) as uow:
        audit.append(
            uow, store.keys, action="keys.rotate", outcome="success" if failed_total == 0 else "partial", principal=ctx.principal,
            detail={"rewrapped": total, "failed": failed_total, "primary": store.master.primary_id()},
        )
    return RotationReport(total, failed_total, store.master.primary_id())


@dataclass
class ShredReport:
    key_id: str | None
    index_rows_removed: int


def retention_until(store: Store, patient_id: str) -> int | None:
    """Microsecond time until which the compartment's records must be kept, or None if empty."""
    with store.reading(INTERNAL) as uow:
        last = compartments.last_activity(uow, patient_id)
        if last is None:
            return None
        years = store.retention_years
        try:
            patient = repository.read_current(uow, store.keys, "Patient", patient_id)
        except CompartmentErased:
            patient = None
        if patient is not None and patient.body is not None:
            doc = jsonio.loads_stored(patient.body)
            if doc.get("deceasedBoolean") is True or "deceasedDateTime" in doc:
                years = max(years, DEATH_RETENTION_YEARS)
    return int(last + years * _YEAR_US)


def shred(
    store: Store, ctx: AccessContext, patient_id: str, legal_reason: str | None, shred_log: Path | None = None
) -> ShredReport:
    """Destroy a patient's data key: everything in the compartment becomes unreadable for good.

    Refused while the retention period runs unless a documented legal reason is given; audited
    either way (the reason is stored encrypted). The compartment id is appended to the shred log
    (`shred_log`, default `EHR_SHRED_LOG`) before the shred commits, so that restoring an older
    backup erases it again; a shred that cannot be logged does not happen.
    """
    if not is_valid_id(patient_id):
        raise KeyActionError("not a valid patient id")
    until = retention_until(store, patient_id)
    if until is not None and now_us() < until and not (legal_reason and legal_reason.strip()):
        kept_until = datetime.fromtimestamp(until / 1_000_000, tz=timezone.utc).date().isoformat()
        with store.writing(INTERNAL) as uow:
            audit.append(uow, store.keys, action="keys.shred", outcome="refused", principal=ctx.principal, compartment=patient_id)
        raise KeyActionError(
            f"medical records of this patient must be kept until {kept_until} (retention period); "
            "give --legal-reason with the legal basis (e.g. a court order) to erase earlier"
        )
    with store.writing(INTERNAL) as uow:
        key_id = store.keys.destroy(uow, patient_id)
        removed = index.remove_compartment(uow, patient_id)
        audit.append(
            uow, store.keys, action="keys.shred", outcome="success", principal=ctx.principal, compartment=patient_id,
            detail={"legal_reason": legal_reason, "key_id": key_id, "index_rows_removed": removed},
        )
        if key_id is not None:  # no data key: no backup can hold one either
            log = shred_log or backup.shred_log_path(store)
            if log is None:
                raise KeyActionError("no shred log is configured (EHR_SHRED_LOG): a shred must reach the backups")
            try:
                backup.append_shred(log, patient_id)
            except OSError as exc:
                raise KeyActionError(f"cannot append to the shred log {log}: {exc.strerror}; nothing was erased") from None
    return ShredReport(key_id, removed)
