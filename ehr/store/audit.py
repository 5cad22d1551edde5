"""Audit rows (minimal form; the access-control issue turns this into the hash-chained trail)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import insert, select

from ehr.store.keys import DataKeyStore, now_us
from ehr.store.schema import SHARED_COMPARTMENT, audit_log
from ehr.store.uow import UnitOfWork


def _aad(action: str, recorded_at: int) -> bytes:
    return f"ehr-audit|1|{action}|{recorded_at}".encode()


def append(
    uow: UnitOfWork,
    keys: DataKeyStore,
    *,
    action: str,
    outcome: str,
    principal: str,
    compartment: str | None = None,
    resource_type: str | None = None,
    logical_id: str | None = None,
    request_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    recorded_at = now_us()
    key_id = blob = None
    if detail:
        # Free text (a legal reason) may name people: it is encrypted like a resource body.
        key = keys.for_write(uow, SHARED_COMPARTMENT)
        key_id, blob = key.key_id, key.seal(json.dumps(detail, ensure_ascii=False).encode(), _aad(action, recorded_at))
    uow.execute(
        insert(audit_log).values(
            recorded_at=recorded_at,
            action=action,
            outcome=outcome,
            principal=principal,
            compartment=compartment,
            resource_type=resource_type,
            logical_id=logical_id,
            request_id=request_id,
            key_id=key_id,
            detail=blob,
        )
    )


def recent(uow: UnitOfWork, keys: DataKeyStore, action: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    stmt = select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit)
    if action:
        stmt = stmt.where(audit_log.c.action == action)
    out = []
    for row in uow.execute(stmt).mappings():
        item = {k: row[k] for k in ("seq", "recorded_at", "action", "outcome", "principal", "compartment", "resource_type", "logical_id")}
        if row["detail"] is not None and row["key_id"]:
            key = keys.for_write(uow, SHARED_COMPARTMENT)
            item["detail"] = json.loads(key.open(row["detail"], _aad(row["action"], row["recorded_at"])))
        out.append(item)
    return out
