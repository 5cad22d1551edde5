"""A content hash of every table: proves that a failed write changed nothing."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from ehr.store.schema import ALL_TABLES


def snapshot(store) -> tuple[dict[str, int], str]:
    digest = hashlib.sha256()
    counts = {}
    with store.engine.connect() as conn:
        for table in ALL_TABLES:
            rows = sorted(repr(tuple(r)) for r in conn.execute(select(table)).all())
            counts[table.name] = len(rows)
            for row in rows:
                digest.update(row.encode())
    return counts, digest.hexdigest()
