"""`(type, id) IN (...)` written so that every database looks it up by index."""

from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import and_, false, or_
from sqlalchemy.sql.elements import ColumnElement


def keys_in(type_column: Any, id_column: Any, keys: Iterable[tuple[str, str]]) -> ColumnElement[bool]:
    """An OR of `type = ? AND id IN (...)`, one term per type.

    Why not a row-value `IN` list: SQLite (3.40 here) plans `(type, id) IN ((?, ?), ...)` as a scan
    of the whole table, so every search page and `$everything` cost grew with the size of the
    database (bench/README.md); per-type terms are primary-key lookups on SQLite and PostgreSQL.
    """
    grouped: dict[str, list[str]] = {}
    for rtype, logical_id in keys:
        grouped.setdefault(rtype, []).append(logical_id)
    if not grouped:
        return false()
    return or_(*(and_(type_column == rtype, id_column.in_(ids)) for rtype, ids in sorted(grouped.items())))
