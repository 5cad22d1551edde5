"""`flask ehr demo --if-empty`: the quick start's first run loads the demo patients, later runs load nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from ehr.store.schema import resource_versions
from fhir_helpers import body


def _versions(store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(resource_versions)).scalar_one())


def test_demo_if_empty_loads_once(app, client, store):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["ehr", "demo", "--if-empty", "--patients", "3"])
    assert first.exit_code == 0, first.output
    assert "demo: 3 patients" in first.output
    patients = body(client.get("/fhir/Patient?_summary=count"))["total"]
    assert patients == 3
    assert body(client.get("/fhir/Encounter?_summary=count"))["total"] > 0  # patients come with visits
    written = _versions(store)
    second = runner.invoke(args=["ehr", "demo", "--if-empty", "--patients", "3"])
    assert second.exit_code == 0, second.output
    assert "nothing loaded" in second.output
    assert _versions(store) == written
    assert body(client.get("/fhir/Patient?_summary=count"))["total"] == 3
