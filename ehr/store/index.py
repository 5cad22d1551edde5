"""Search-index rows, written in the same transaction as the resource version they describe.

Rows always describe the current version only: an update replaces them, a delete removes them, so
a search can never return a deleted or superseded version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from sqlalchemy import delete, insert, select

from ehr.store.schema import idx_reference, idx_token, resources
from ehr.store.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class TokenRow:
    param: str
    system: str | None
    code: str | None  # plain value (clinical codes)
    hash: bytes | None  # blind-index token (identifying values)


@dataclass(frozen=True, slots=True)
class RefRow:
    param: str
    target_type: str
    target_id: str


def replace(
    uow: UnitOfWork,
    rtype: str,
    rid: str,
    compartment: str | None,
    tokens: Sequence[TokenRow],
    refs: Sequence[RefRow],
    fresh: bool,
) -> None:
    """Make the index rows of (rtype, rid) exactly `tokens` and `refs`."""
    if not fresh:
        remove(uow, rtype, rid)
    base = {"resource_type": rtype, "logical_id": rid, "compartment": compartment}
    if tokens:
        uow.conn.execute(
            insert(idx_token), [{**base, "param": t.param, "system": t.system, "code": t.code, "hash": t.hash} for t in tokens]
        )
    if refs:
        uow.conn.execute(
            insert(idx_reference),
            [{**base, "param": x.param, "target_type": x.target_type, "target_id": x.target_id} for x in refs],
        )


def remove(uow: UnitOfWork, rtype: str, rid: str) -> None:
    for table in (idx_token, idx_reference):
        uow.conn.execute(delete(table).where(table.c.resource_type == rtype, table.c.logical_id == rid))


def remove_compartment(uow: UnitOfWork, compartment: str) -> int:
    n = 0
    for table in (idx_token, idx_reference):
        n += uow.conn.execute(delete(table).where(table.c.compartment == compartment)).rowcount or 0
    return n


def referrers(uow: UnitOfWork, target_type: str, target_id: str, limit: int = 5) -> list[tuple[str, str]]:
    """Current resources (other than the target itself) that reference the target."""
    stmt = (
        select(idx_reference.c.resource_type, idx_reference.c.logical_id)
        .where(
            idx_reference.c.target_type == target_type,
            idx_reference.c.target_id == target_id,
            idx_reference.c.param == "_ref",
        )
        .distinct()
        .limit(limit + 1)
    )
    return [(row[0], row[1]) for row in uow.conn.execute(stmt) if (row[0], row[1]) != (target_type, target_id)][:limit]


def match_tokens(
    uow: UnitOfWork, rtype: str, param: str, system: str | None, hash_: bytes | None, code: str | None, limit: int
) -> list[str]:
    """Logical ids of `rtype` resources with a matching token row (system "" = no system)."""
    t = idx_token
    stmt = select(t.c.logical_id).where(t.c.resource_type == rtype, t.c.param == param)
    if hash_ is not None:
        stmt = stmt.where(t.c.hash == hash_)
    if code is not None:
        stmt = stmt.where(t.c.code == code)
    if system == "":
        stmt = stmt.where(t.c.system.is_(None))
    elif system is not None:
        stmt = stmt.where(t.c.system == system)
    stmt = stmt.distinct().order_by(t.c.logical_id).limit(limit)
    return [row[0] for row in uow.conn.execute(stmt)]


def live_of_type(uow: UnitOfWork, rtype: str, ids: Sequence[str] | None, after_id: str | None, limit: int) -> list[str]:
    stmt = select(resources.c.logical_id).where(resources.c.resource_type == rtype, resources.c.deleted.is_(False))
    if ids is not None:
        stmt = stmt.where(resources.c.logical_id.in_(list(ids)))
    if after_id is not None:
        stmt = stmt.where(resources.c.logical_id > after_id)
    return [row[0] for row in uow.conn.execute(stmt.order_by(resources.c.logical_id).limit(limit))]
