"""Search-index rows, written in the same transaction as the resource version they describe.

Rows always describe the current version only: an update replaces them, a delete removes them, so
a search can never return a deleted or superseded version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from sqlalchemy import delete, select

from ehr.store.schema import INDEX_TABLES, idx_date, idx_number, idx_reference, idx_string, idx_token, resources
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


@dataclass(frozen=True, slots=True)
class StringRow:
    param: str
    kind: str  # "p" prefix, "e" exact, "w" word of a code's text
    hash: bytes


@dataclass(frozen=True, slots=True)
class DateRow:
    param: str
    low: int
    high: int


@dataclass(frozen=True, slots=True)
class NumberRow:
    param: str
    value: float
    system: str | None
    code: str | None
    unit: str | None


@dataclass
class IndexRows:
    tokens: list[TokenRow] = field(default_factory=list)
    strings: list[StringRow] = field(default_factory=list)
    dates: list[DateRow] = field(default_factory=list)
    numbers: list[NumberRow] = field(default_factory=list)
    refs: list[RefRow] = field(default_factory=list)

    def dedupe(self) -> None:
        for name in ("tokens", "strings", "dates", "numbers", "refs"):
            setattr(self, name, list(dict.fromkeys(getattr(self, name))))


def replace(uow: UnitOfWork, rtype: str, rid: str, compartment: str | None, rows: IndexRows, fresh: bool) -> None:
    """Make the index rows of (rtype, rid) exactly `rows` (one multi-row insert per table)."""
    if not fresh:
        remove(uow, rtype, rid)
    base = {"resource_type": rtype, "logical_id": rid, "compartment": compartment}
    batches = (
        (idx_token, [{**base, "param": t.param, "system": t.system, "code": t.code, "hash": t.hash} for t in rows.tokens]),
        (idx_string, [{**base, "param": s.param, "kind": s.kind, "hash": s.hash} for s in rows.strings]),
        (idx_date, [{**base, "param": d.param, "low": d.low, "high": d.high} for d in rows.dates]),
        (idx_number, [{**base, "param": n.param, "value": n.value, "system": n.system, "code": n.code, "unit": n.unit} for n in rows.numbers]),
        (idx_reference, [{**base, "param": x.param, "target_type": x.target_type, "target_id": x.target_id} for x in rows.refs]),
    )
    for table, values in batches:
        uow.queue_many(table, values)


def remove(uow: UnitOfWork, rtype: str, rid: str) -> None:
    for table in INDEX_TABLES:
        uow.execute(delete(table).where(table.c.resource_type == rtype, table.c.logical_id == rid))


def remove_compartment(uow: UnitOfWork, compartment: str) -> int:
    n = 0
    for table in INDEX_TABLES:
        n += uow.execute(delete(table).where(table.c.compartment == compartment)).rowcount or 0
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
    return [(row[0], row[1]) for row in uow.execute(stmt) if (row[0], row[1]) != (target_type, target_id)][:limit]


def token_holders(uow: UnitOfWork, rtype: str, param: str, hash_: bytes) -> list[str]:
    """Logical ids of current `rtype` resources with this blind token (index rows are live only)."""
    stmt = select(idx_token.c.logical_id).where(idx_token.c.resource_type == rtype, idx_token.c.param == param, idx_token.c.hash == hash_)
    return [row[0] for row in uow.execute(stmt.distinct())]


def live_of_type(uow: UnitOfWork, rtype: str, ids: Sequence[str] | None, after_id: str | None, limit: int) -> list[str]:
    stmt = select(resources.c.logical_id).where(resources.c.resource_type == rtype, resources.c.deleted.is_(False))
    if ids is not None:
        stmt = stmt.where(resources.c.logical_id.in_(list(ids)))
    if after_id is not None:
        stmt = stmt.where(resources.c.logical_id > after_id)
    return [row[0] for row in uow.execute(stmt.order_by(resources.c.logical_id).limit(limit))]


def referrers_all(uow: UnitOfWork, target_type: str, target_id: str) -> list[tuple[str, str]]:
    """Every current resource that references the target, through any parameter."""
    stmt = select(idx_reference.c.resource_type, idx_reference.c.logical_id).where(
        idx_reference.c.target_type == target_type, idx_reference.c.target_id == target_id
    )
    return sorted({(row[0], row[1]) for row in uow.execute(stmt.distinct())} - {(target_type, target_id)})


def token_row_holders(uow: UnitOfWork, rtype: str, row: TokenRow) -> list[str]:
    """Logical ids of current `rtype` resources indexed with exactly this token row."""
    stmt = select(idx_token.c.logical_id).where(idx_token.c.resource_type == rtype, idx_token.c.param == row.param)
    stmt = stmt.where(idx_token.c.system == row.system) if row.system is not None else stmt.where(idx_token.c.system.is_(None))
    stmt = stmt.where(idx_token.c.code == row.code) if row.code is not None else stmt.where(idx_token.c.code.is_(None))
    stmt = stmt.where(idx_token.c.hash == row.hash) if row.hash is not None else stmt.where(idx_token.c.hash.is_(None))
    return [r[0] for r in uow.execute(stmt.distinct())]
