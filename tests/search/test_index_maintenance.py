"""The index describes only current versions; the rebuild command re-derives it exactly."""

from __future__ import annotations

from sqlalchemy import text

from fhir_helpers import put
from search_helpers import ids, make, obs

TABLES = ("idx_token", "idx_string", "idx_date", "idx_number", "idx_reference")


def _snapshot(store) -> dict[str, list[tuple]]:
    with store.engine.connect() as conn:
        return {t: sorted(tuple(r) for r in conn.execute(text(f"SELECT resource_type, logical_id, compartment, param, * FROM {t}")).all()) for t in TABLES}


def _without_ids(snapshot: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    return {t: sorted(row[:4] + row[5:] for row in rows) for t, rows in snapshot.items()}


def test_update_and_delete_keep_the_index_exact(client):
    pid = make(client, {"resourceType": "Patient", "name": [{"text": "Hà Văn Cũ"}], "birthDate": "1980"})
    assert ids(client, "/fhir/Patient", name="ha van cu") == {pid}
    put(client, {"resourceType": "Patient", "id": pid, "name": [{"text": "Hà Văn Mới"}], "birthDate": "1981"})
    assert ids(client, "/fhir/Patient", name="ha van cu") == set()
    assert ids(client, "/fhir/Patient", name="ha van moi") == {pid}
    assert ids(client, "/fhir/Patient", birthdate="1980") == set()
    assert ids(client, "/fhir/Patient", birthdate="1981") == {pid}
    oid = make(client, obs(pid))
    client.delete(f"/fhir/Observation/{oid}")
    assert ids(client, "/fhir/Observation", patient=pid) == set()
    assert ids(client, "/fhir/Observation") == set()


def test_rebuild_recreates_the_same_rows(app, client, store):
    pid = make(client, {"resourceType": "Patient", "name": [{"text": "Lâm Thị Dựng"}], "birthDate": "1992-03-04",
                        "identifier": [{"system": "urn:cccd", "value": "001192000333"}]})
    make(client, obs(pid, valueQuantity={"value": 5, "unit": "kg"}, effectiveDateTime="2024-01-02"))
    before = _without_ids(_snapshot(store))
    with store.engine.begin() as conn:
        for table in TABLES:
            conn.execute(text(f"DELETE FROM {table}"))
    assert ids(client, "/fhir/Patient", name="lam") == set()
    result = app.test_cli_runner().invoke(args=["ehr", "index", "rebuild", "--batch", "1"])
    assert result.exit_code == 0 and "re-indexed 2 resources" in result.output, result.output
    assert _without_ids(_snapshot(store)) == before
    assert ids(client, "/fhir/Patient", name="lam") == {pid}
