"""Audit records of what each principal did: built here from the access context, written by
`ehr.store.audit`.

- `disclosed`: data is about to leave the server (read, search, history, $everything, export
  download). The record is durable before this returns (group commit); if it cannot be made
  durable, `AuditUnavailable` propagates and the caller sends nothing (fail closed).
- `queued`: a write's record, in the write's own transaction (both commit or neither does).
- `event`: anything else worth a record (login, failed login, denial, break-glass, token).

Records carry ids, never values: principals are account or client ids, patients are random
resource ids, free text (a reason) is encrypted.
"""

from __future__ import annotations

from typing import Any, Iterable

from ehr.services.context import AccessContext
from ehr.store import audit
from ehr.store.access import INTERNAL
from ehr.store.repository import StoredVersion
from ehr.store.runtime import Store
from ehr.store.schema import SHARED_COMPARTMENT
from ehr.store.uow import UnitOfWork


def _fields(ctx: AccessContext) -> dict[str, Any]:
    return dict(principal=ctx.principal, organization=ctx.organization, request_id=ctx.request_id, purpose=ctx.purpose, source_hash=ctx.source_hash)


def patients_of(versions: Iterable[StoredVersion]) -> list[str]:
    return sorted({v.compartment for v in versions if v.compartment and v.compartment != SHARED_COMPARTMENT})


def disclosed(
    store: Store,
    ctx: AccessContext,
    action: str,
    *,
    resource_type: str | None = None,
    logical_id: str | None = None,
    versions: Iterable[StoredVersion] = (),
    patients: Iterable[str] = (),
    outcome: str = "success",
) -> None:
    """Record a disclosure and wait until the record is durable (fail closed)."""
    listed = sorted(set(patients_of(versions)) | set(patients))
    compartment = listed[0] if len(listed) == 1 else None
    row = audit.row(
        None, None, action=action, outcome=outcome, compartment=compartment, resource_type=resource_type, logical_id=logical_id,
        patients=listed if len(listed) > 1 else None, **_fields(ctx),
    )
    store.audit.write([row])


def queued(
    uow: UnitOfWork,
    store: Store,
    ctx: AccessContext,
    action: str,
    *,
    resource_type: str | None = None,
    logical_id: str | None = None,
    compartment: str | None = None,
    outcome: str = "success",
    detail: dict[str, Any] | None = None,
    under_patient: bool = False,
) -> None:
    """Record a write in the write's own transaction (`under_patient`: the detail is encrypted
    under the patient's key, so erasing the patient erases it)."""
    audit.append(
        uow, store.keys, action=action, outcome=outcome, compartment=compartment, resource_type=resource_type,
        logical_id=logical_id, detail=detail, detail_under_patient=under_patient, **_fields(ctx),
    )


def event(
    store: Store,
    ctx: AccessContext,
    action: str,
    outcome: str,
    *,
    resource_type: str | None = None,
    logical_id: str | None = None,
    compartment: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """A record of its own (login, denial, token...), durable before this returns."""
    if detail:
        with store.writing(INTERNAL) as uow:
            audit.append(
                uow, store.keys, action=action, outcome=outcome, compartment=compartment, resource_type=resource_type,
                logical_id=logical_id, detail=detail, detail_under_patient=compartment is not None, **_fields(ctx),
            )
        return
    row = audit.row(None, None, action=action, outcome=outcome, compartment=compartment, resource_type=resource_type, logical_id=logical_id, **_fields(ctx))
    store.audit.write([row])
