"""Search plans compiled to SQL over the index tables.

A plan holds criteria (AND); each criterion holds alternatives (OR, from commas) and may be
negated (`:not`, `ne`, `:missing`). Each alternative becomes a correlated EXISTS on one index
table, so the database can drive the query from the most selective index. Paging is keyset-based
on (sort keys..., logical id): a page link keeps working while new data arrives, and never repeats
or skips a resource that existed when the first page was read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence, Union

from sqlalchemy import String, and_, case, cast, false, func, literal, not_, or_, select
from sqlalchemy.sql import ColumnElement, Select

from ehr.store.access import Restriction, predicate
from ehr.store.keysets import keys_in
from ehr.store.schema import idx_date, idx_number, idx_reference, idx_string, idx_token, resources
from ehr.store.uow import UnitOfWork


@dataclass(frozen=True)
class TokenMatch:
    param: str
    system: str | None = None  # None: any system; "": no system
    code: str | None = None
    hash: bytes | None = None


@dataclass(frozen=True)
class StringMatch:
    param: str
    kind: str
    hash: bytes


@dataclass(frozen=True)
class DateMatch:
    param: str
    prefix: str
    low: int
    high: int


@dataclass(frozen=True)
class NumberMatch:
    param: str
    prefix: str
    value: float
    low: float
    high: float
    system: str | None = None
    code: str | None = None


@dataclass(frozen=True)
class RefMatch:
    param: str
    target_type: str | None = None
    target_id: str | None = None
    chain: Plan | None = None


@dataclass(frozen=True)
class IdMatch:
    ids: tuple[str, ...]


@dataclass(frozen=True)
class UpdatedMatch:
    prefix: str
    low: int
    high: int


@dataclass(frozen=True)
class HasMatch:
    source_type: str
    param: str
    plan: Plan


@dataclass(frozen=True)
class Present:
    table: str  # token, string, date, number, reference
    param: str


Match = Union[TokenMatch, StringMatch, DateMatch, NumberMatch, RefMatch, IdMatch, UpdatedMatch, HasMatch, Present]


@dataclass
class Criterion:
    alternatives: list[Match]
    negate: bool = False


@dataclass
class Plan:
    resource_type: str
    criteria: list[Criterion] = field(default_factory=list)
    never: bool = False  # a criterion that can match nothing (e.g. no bucket for a date)
    # What the principal may see; set on every plan, nested ones (chains, _has) included, so a
    # chained or _has search cannot test resources the principal cannot read.
    restriction: Restriction | None = None

    def __hash__(self) -> int:  # plans nest inside frozen matches
        return id(self)


@dataclass(frozen=True)
class SortKey:
    kind: str  # "lastUpdated", "id", "date", "number", "token"
    param: str
    descending: bool


TABLES = {"token": idx_token, "string": idx_string, "date": idx_date, "number": idx_number, "reference": idx_reference}


def _range_predicate(prefix: str, low: ColumnElement[Any], high: ColumnElement[Any], s_low: int, s_high: int) -> ColumnElement[bool]:
    """R4 date prefixes on half-open ranges; only the asked-for expression is built."""
    if prefix in ("eq", "ne", "ge", "le"):
        contained = and_(low >= s_low, high <= s_high)
        if prefix == "eq":
            return contained
        if prefix == "ne":
            return not_(contained)
        return or_(high > s_high, contained) if prefix == "ge" else or_(low < s_low, contained)
    if prefix == "gt":
        return high > s_high
    if prefix == "lt":
        return low < s_low
    if prefix == "sa":
        return low >= s_high
    if prefix == "eb":
        return high <= s_low
    return and_(low < s_high, high > s_low)  # ap, on the widened range


def _number_predicate(m: NumberMatch, col: ColumnElement[Any]) -> ColumnElement[bool]:
    if m.prefix == "eq":
        return and_(col >= m.low, col < m.high)
    if m.prefix == "ne":
        return or_(col < m.low, col >= m.high)
    if m.prefix in ("gt", "sa"):
        return col > m.value
    if m.prefix in ("lt", "eb"):
        return col < m.value
    if m.prefix == "ge":
        return col >= m.value
    if m.prefix == "le":
        return col <= m.value
    return and_(col >= min(m.value * 0.9, m.value * 1.1), col <= max(m.value * 0.9, m.value * 1.1))


def _row_condition(table: Any, m: Match, probe: bool = False) -> ColumnElement[bool]:
    """The condition one index row must meet for this alternative (param included).

    `probe`: the row is looked up by (resource_type, logical_id, param); range columns are then
    written `col + 0` so the planner does not prefer a range index (SQLite's OR optimisation would
    otherwise scan the whole date index once per candidate).
    """
    c = table.c
    if isinstance(m, TokenMatch):
        parts = [c.param == m.param]
        if m.hash is not None:
            parts.append(c.hash == m.hash)
        if m.code is not None:
            parts.append(c.code == m.code)
        if m.system == "":
            parts.append(c.system.is_(None))
        elif m.system is not None:
            parts.append(c.system == m.system)
        return and_(*parts)
    if isinstance(m, StringMatch):
        return and_(c.param == m.param, c.kind == m.kind, c.hash == m.hash)
    if isinstance(m, DateMatch):
        low, high = (c.low + 0, c.high + 0) if probe else (c.low, c.high)
        return and_(c.param == m.param, _range_predicate(m.prefix, low, high, m.low, m.high))
    if isinstance(m, NumberMatch):
        parts = [c.param == m.param, _number_predicate(m, c.value + 0 if probe else c.value)]
        if m.system:
            parts.append(c.system == m.system)
        if m.code:
            parts.append(c.code == m.code if m.system else or_(c.code == m.code, c.unit == m.code))
        return and_(*parts)
    if isinstance(m, RefMatch):
        parts = [c.param == m.param]
        if m.target_type:
            parts.append(c.target_type == m.target_type)
        if m.target_id:
            parts.append(c.target_id == m.target_id)
        if m.chain is not None:
            parts.append(c.target_id.in_(plan_ids(m.chain)))
        return and_(*parts)
    if isinstance(m, Present):
        return c.param == m.param
    raise TypeError(type(m).__name__)


def _table_of(m: Match) -> Any:
    if isinstance(m, TokenMatch):
        return idx_token
    if isinstance(m, StringMatch):
        return idx_string
    if isinstance(m, DateMatch):
        return idx_date
    if isinstance(m, NumberMatch):
        return idx_number
    if isinstance(m, RefMatch):
        return idx_reference
    if isinstance(m, Present):
        return TABLES[m.table]
    return None


def _criterion(r: Any, criterion: Criterion) -> ColumnElement[bool]:
    exprs: list[ColumnElement[bool]] = []
    by_table: dict[Any, list[Match]] = {}
    for m in criterion.alternatives:
        if isinstance(m, IdMatch):
            exprs.append(r.c.logical_id.in_(list(m.ids)))
        elif isinstance(m, UpdatedMatch):
            exprs.append(_range_predicate(m.prefix, r.c.last_updated, r.c.last_updated + 1, m.low, m.high))
        elif isinstance(m, HasMatch):
            x = idx_reference.alias()
            sources = select(x.c.target_id).where(
                x.c.resource_type == m.source_type,
                x.c.param == m.param,
                x.c.target_type == r.c.resource_type,
                x.c.logical_id.in_(plan_ids(m.plan)),
            )
            exprs.append(r.c.logical_id.in_(sources))
        else:
            by_table.setdefault(_table_of(m), []).append(m)
    for table, matches in by_table.items():
        t = table.alias()
        exists = select(literal(1)).where(
            t.c.resource_type == r.c.resource_type, t.c.logical_id == r.c.logical_id, or_(*[_row_condition(t, m, probe=True) for m in matches])
        )
        exprs.append(exists.exists())
    combined = or_(*exprs) if len(exprs) > 1 else exprs[0] if exprs else false()
    return not_(combined) if criterion.negate else combined


# How well a kind of match narrows the result: the best one drives the query as an uncorrelated
# `logical_id IN (...)` over its index; the others are probed per candidate with EXISTS on the
# (resource_type, logical_id, param) index.
def _rank(m: Match) -> int:
    if isinstance(m, TokenMatch):
        return 1 if m.hash is not None else 3
    if isinstance(m, StringMatch):
        return 1
    if isinstance(m, RefMatch):
        return 2 if (m.target_id or m.chain is not None) else 6
    if isinstance(m, NumberMatch):
        return 4
    if isinstance(m, DateMatch):
        return 5
    return 99


def _driver(criteria: list[Criterion]) -> int | None:
    best, best_rank = None, 99
    for i, criterion in enumerate(criteria):
        tables = {_table_of(m) for m in criterion.alternatives}
        if criterion.negate or len(tables) != 1 or None in tables:
            continue
        rank = max(_rank(m) for m in criterion.alternatives)
        if rank < best_rank:
            best, best_rank = i, rank
    return best


def _base(plan: Plan) -> tuple[Any, Select[Any]]:
    r = resources.alias()
    stmt = select(r.c.logical_id).where(r.c.resource_type == plan.resource_type, r.c.deleted.is_(False))
    if plan.restriction is not None:
        stmt = stmt.where(predicate(plan.restriction, r.c.compartment, r.c.created_by_org, r.c.resource_type))
    if plan.never:
        stmt = stmt.where(false())
    driver = _driver(plan.criteria)
    for i, criterion in enumerate(plan.criteria):
        if i == driver:
            table = _table_of(criterion.alternatives[0]).alias()
            ids = select(table.c.logical_id).where(
                table.c.resource_type == plan.resource_type, or_(*[_row_condition(table, m) for m in criterion.alternatives])
            )
            stmt = stmt.where(r.c.logical_id.in_(ids))
        else:
            stmt = stmt.where(_criterion(r, criterion))
    return r, stmt


def plan_ids(plan: Plan) -> Select[Any]:
    """A subquery of the logical ids matching a plan (for chains and _has)."""
    return _base(plan)[1]


def _sort_columns(r: Any, keys: Sequence[SortKey], dialect: str) -> list[tuple[ColumnElement[Any], bool]]:
    """(column, descending) pairs: for each key a missing-flag (always ascending) and a value."""
    out: list[tuple[ColumnElement[Any], bool]] = []
    for key in keys:
        if key.kind == "lastUpdated":
            out.append((r.c.last_updated, key.descending))
            continue
        if key.kind == "id":
            out.append((r.c.logical_id, key.descending))
            continue
        table = {"date": idx_date, "number": idx_number, "token": idx_token}[key.kind]
        t = table.alias()
        source = t.c[{"date": "low", "number": "value", "token": "code"}[key.kind]]
        if key.kind == "token" and dialect == "postgresql":
            source = source.collate("C")
        agg = func.max(source) if key.descending else func.min(source)
        value = select(agg).where(t.c.resource_type == r.c.resource_type, t.c.logical_id == r.c.logical_id, t.c.param == key.param).scalar_subquery()
        out.append((case((value.is_(None), 1), else_=0), False))
        blank: Any = "" if key.kind == "token" else 0
        out.append((func.coalesce(value, cast(literal(blank), String) if key.kind == "token" else literal(blank)), key.descending))
    return out


@dataclass
class Page:
    ids: list[str]
    last_key: list[Any] | None  # sort values of the last row, for the next page
    more: bool


def find(uow: UnitOfWork, plan: Plan, keys: Sequence[SortKey], after: list[Any] | None, limit: int) -> Page:
    r, stmt = _base(plan)
    columns = _sort_columns(r, keys, uow.conn.dialect.name)
    labelled = [col.label(f"k{i}") for i, (col, _) in enumerate(columns)]
    inner = stmt.add_columns(*labelled).subquery()
    ordered = [(inner.c[f"k{i}"], desc) for i, (_, desc) in enumerate(columns)] + [(inner.c.logical_id, False)]
    query = select(inner)
    if after is not None:
        query = query.where(_after(ordered, after))
    query = query.order_by(*[col.desc() if desc else col.asc() for col, desc in ordered]).limit(limit + 1)
    rows = uow.execute(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    last = list(rows[-1][1:]) + [rows[-1][0]] if rows else None
    return Page([row[0] for row in rows], last, more)


def _after(ordered: list[tuple[Any, bool]], values: list[Any]) -> ColumnElement[bool]:
    """Rows strictly after `values` in the lexicographic order of `ordered`."""
    clauses = []
    for i, (col, desc) in enumerate(ordered):
        equal = [ordered[j][0] == values[j] for j in range(i)]
        beyond = col < values[i] if desc else col > values[i]
        clauses.append(and_(*equal, beyond) if equal else beyond)
    return or_(*clauses)


def count(uow: UnitOfWork, plan: Plan) -> int:
    _, stmt = _base(plan)
    return int(uow.execute(select(func.count()).select_from(stmt.subquery())).scalar_one())


def targets_of(uow: UnitOfWork, source_type: str, ids: Sequence[str], param: str, target_type: str | None) -> list[tuple[str, str]]:
    """References from the given resources through `param` ("_ref" = every reference)."""
    if not ids:
        return []
    x = idx_reference
    stmt = select(x.c.target_type, x.c.target_id).where(x.c.resource_type == source_type, x.c.logical_id.in_(list(ids)), x.c.param == param)
    if target_type:
        stmt = stmt.where(x.c.target_type == target_type)
    return [(row[0], row[1]) for row in uow.execute(stmt.distinct())]


def referrers_to(uow: UnitOfWork, source_type: str, param: str, targets: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Resources of `source_type` whose `param` points at one of `targets`."""
    if not targets:
        return []
    x = idx_reference
    stmt = select(x.c.resource_type, x.c.logical_id).where(
        x.c.resource_type == source_type, x.c.param == param, keys_in(x.c.target_type, x.c.target_id, targets)
    )
    return [(row[0], row[1]) for row in uow.execute(stmt.distinct())]

