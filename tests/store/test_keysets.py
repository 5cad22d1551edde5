"""Reads of many resources by key are index lookups, so their cost does not grow with the database
(SQLite planned a row-value IN list as a scan of the whole table)."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from ehr.services.context import AccessContext
from ehr.services import resources
from ehr.store import compartments, repository
from ehr.store.access import INTERNAL
from fhir_helpers import patient

OPS = AccessContext.operator("test")


def _plans(store, run) -> list[str]:
    statements = []

    def seen(conn, cursor, statement, params, context, many):  # noqa: ANN001
        if statement.lstrip().upper().startswith("SELECT") and "EXPLAIN" not in statement:
            statements.append((statement, params))

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        run()
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    with store.engine.connect() as conn:
        return [row[3] for s, p in statements for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + s, p)]


def test_reading_many_keys_uses_the_primary_key(app, store):
    if store.engine.dialect.name != "sqlite":
        pytest.skip("the plan check is SQLite's EXPLAIN QUERY PLAN; PostgreSQL's EXPLAIN is checked by bench/run.py")
    pid = resources.create(store, OPS, patient()).version.logical_id
    oid = resources.create(store, OPS, {"resourceType": "Organization", "name": "Trạm y tế"}).version.logical_id
    wanted = [("Patient", pid), ("Organization", oid), ("Observation", "missing")]

    def run() -> None:
        with store.reading(INTERNAL) as uow:
            assert set(repository.read_many(uow, store.keys, wanted)) == {("Patient", pid), ("Organization", oid)}
            compartments.referenced(uow, [("Patient", pid)], ["Organization", "Practitioner"], None)

    plans = _plans(store, run)
    assert plans and not [p for p in plans if p.startswith("SCAN resources") or p.startswith("SCAN idx_reference")], plans
