"""The audit trail: a committed record for every disclosure, write and refusal; fail closed when
the trail cannot be written; read back as BALP-shaped AuditEvents by the right people."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from sqlalchemy import select, text

from access_helpers import OPS, bearer, register, token
from ehr.fhir.resources import validate
from ehr.services import audit_events, care, patients, resources
from ehr.services.context import AccessContext
from ehr.services.policy import patient_context, staff_context
from ehr.store.schema import audit_log
from fhir_helpers import patient


def _rows(store, request_id: str) -> list[dict]:
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(audit_log).where(audit_log.c.request_id == request_id)).mappings()]


@pytest.fixture
def hospital(client, store):
    resources.update(store, OPS, "Organization", "org-h", {"resourceType": "Organization", "id": "org-h", "name": "H"})
    return token(client, register(store, "hosp", "org-h", ["system/*.cruds"]), "system/*.cruds")


def test_every_response_with_patient_data_has_its_committed_record(client, hospital):
    h = bearer(hospital)
    pid = client.post("/fhir/Patient", headers=h, json=patient("Đỗ Văn Canary")).get_json()["id"]
    calls = [
        ("create", lambda: client.post("/fhir/Observation", headers=h, json={"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": f"Patient/{pid}"}})),
        ("read", lambda: client.get(f"/fhir/Patient/{pid}", headers=h)),
        ("vread", lambda: client.get(f"/fhir/Patient/{pid}/_history/1", headers=h)),
        ("search", lambda: client.get(f"/fhir/Observation?subject=Patient/{pid}&_include=Observation:subject", headers=h)),
        ("history", lambda: client.get(f"/fhir/Patient/{pid}/_history", headers=h)),
        ("everything", lambda: client.get(f"/fhir/Patient/{pid}/$everything", headers=h)),
        ("read", lambda: client.get(f"/fhir/Patient/{uuid.uuid4()}", headers=h)),  # not there: no record needed
        ("authenticate", lambda: client.get(f"/fhir/Patient/{pid}", headers=bearer("forged"))),
    ]
    for action, call in calls:
        rid = uuid.uuid4().hex
        response = _with_request_id(client, call, rid)
        rows = _rows(client.application.extensions["ehr.store"], rid)
        if response.status_code < 300:
            assert [r["action"] for r in rows] == [action], (action, rows)
            assert pid in (rows[0]["compartment"] or "") + (rows[0]["patients"] or "")
            assert rows[0]["principal"] == "system:hosp" and rows[0]["organization"] == "org-h"
        elif response.status_code == 401:
            assert [(r["action"], r["outcome"]) for r in rows] == [("authenticate", "failure")]
        else:
            assert rows == []


def _with_request_id(client, call, rid):
    original = client.environ_base.get("HTTP_X_REQUEST_ID")
    client.environ_base["HTTP_X_REQUEST_ID"] = rid
    try:
        return call()
    finally:
        client.environ_base.pop("HTTP_X_REQUEST_ID", None)
        if original:
            client.environ_base["HTTP_X_REQUEST_ID"] = original


def test_denials_are_recorded(client, store, hospital):
    other = token(client, register(store, "other", "org-h", ["system/Organization.rs"]), "system/Organization.rs")
    pid = client.post("/fhir/Patient", headers=bearer(hospital), json=patient()).get_json()["id"]
    stranger = token(client, register(store, "stranger", "org-x", ["system/*.rs"]))
    rid = uuid.uuid4().hex
    assert _with_request_id(client, lambda: client.get(f"/fhir/Patient/{pid}", headers=bearer(stranger)), rid).status_code == 404
    assert [(r["action"], r["outcome"], r["compartment"]) for r in _rows(store, rid)] == [("read", "denied", pid)]
    rid = uuid.uuid4().hex
    assert _with_request_id(client, lambda: client.get("/fhir/Patient", headers=bearer(other)), rid).status_code == 403
    assert [(r["action"], r["outcome"]) for r in _rows(store, rid)] == [("search", "denied")]


@pytest.fixture
def audit_down(store):
    """A real failure of the audit store: the database refuses every new audit row."""
    dialect = store.engine.dialect.name
    create = (
        ["CREATE TRIGGER audit_down BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit store down'); END"] if dialect == "sqlite" else [
            "CREATE OR REPLACE FUNCTION audit_down() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit store down'; END; $$ LANGUAGE plpgsql",
            "CREATE TRIGGER audit_down BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_down()",
        ]
    )
    drop = ["DROP TRIGGER IF EXISTS audit_down"] if dialect == "sqlite" else ["DROP TRIGGER IF EXISTS audit_down ON audit_log", "DROP FUNCTION IF EXISTS audit_down()"]

    def switch(on: bool) -> None:
        with store.engine.begin() as conn:
            for statement in create if on else drop:
                conn.execute(text(statement))

    yield switch
    switch(False)


def test_no_data_leaves_when_the_audit_trail_cannot_be_written(client, store, audit_down):
    pid = client.post("/fhir/Patient", json=patient("Phan Thị Canaryaudit"), headers={"Content-Type": "application/fhir+json"}).get_json()["id"]
    audit_down(True)
    for path in (f"/fhir/Patient/{pid}", f"/fhir/Patient?_id={pid}", f"/fhir/Patient/{pid}/$everything", f"/fhir/Patient/{pid}/_history"):
        response = client.get(path)
        assert response.status_code == 503 and b"Canaryaudit" not in response.data, path
    created = client.post("/fhir/Patient", json=patient("Phan Văn Canarywrite"), headers={"Content-Type": "application/fhir+json"})
    assert created.status_code == 503 and b"Canarywrite" not in created.data
    audit_down(False)
    assert client.get("/fhir/Patient?name=Canarywrite").get_json().get("total") == 0  # the write did not happen either


def test_patients_and_admins_read_the_trail_as_balp_audit_events(client, store, hospital):
    pid = client.post("/fhir/Patient", headers=bearer(hospital), json=patient()).get_json()["id"]
    client.get(f"/fhir/Patient/{pid}", headers=bearer(hospital))
    doctor = staff_context("acct-doc", "org-clinic", "doctor")
    care.break_glass(store, doctor, pid, "bất tỉnh tại phòng cấp cứu, cần tiền sử")
    mine = audit_events.search(store, patient_context("acct-p", pid), {})
    actions = [e["subtype"][0]["code"] if e.get("subtype") else e["type"]["code"] for e in mine.events]
    assert "read" in actions and "create" in actions and "110113" in actions  # break-glass is shown
    glass = next(e for e in mine.events if e["type"]["code"] == "110113")
    assert glass["entity"][0]["detail"][0]["valueString"].startswith("bất tỉnh")
    for event in mine.events:
        assert validate(event) == [], event
        assert any(a["requestor"] for a in event["agent"]) and event["meta"]["profile"][0].startswith("https://profiles.ihe.net/ITI/BALP")
    assert audit_events.search(store, patient_context("acct-q", "someone-else"), {"patient": [pid]}).events == []
    admin = audit_events.search(store, staff_context("acct-admin", "org-h", "admin"), {})
    assert admin.events and all(any(a["who"].get("reference") == "Organization/org-h" for a in e["agent"]) for e in admin.events)
    assert audit_events.search(store, staff_context("acct-admin2", "org-z", "admin"), {}).events == []
    assert client.get("/fhir/AuditEvent", headers=bearer(hospital)).status_code == 200


def test_match_and_merge_leave_their_records(client, store, hospital):
    h = bearer(hospital)
    source = client.post("/fhir/Patient", headers=h, json=patient("Mai Văn Trùng", birthDate="1980-01-01")).get_json()["id"]
    target = client.post("/fhir/Patient", headers=h, json=patient("Mai Văn Trùng", birthDate="1980-01-01")).get_json()["id"]
    candidate = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": patient("Mai Văn Trùng", birthDate="1980-01-01")}]}
    rid = uuid.uuid4().hex
    assert _with_request_id(client, lambda: client.post("/fhir/Patient/$match", headers=h, json=candidate), rid).status_code == 200
    [row] = _rows(store, rid)
    assert (row["action"], row["outcome"], row["principal"]) == ("match", "success", "system:hosp")
    assert set(row["patients"].split()) == {source, target}  # both candidates were disclosed
    params = {"resourceType": "Parameters", "parameter": [{"name": "source-patient", "valueReference": {"reference": f"Patient/{source}"}},
                                                          {"name": "target-patient", "valueReference": {"reference": f"Patient/{target}"}}]}
    rid = uuid.uuid4().hex
    # A hospital's system may not merge, even two records it wrote (issue 20): a refusal on record.
    assert _with_request_id(client, lambda: client.post("/fhir/Patient/$merge", headers=h, json=params), rid).status_code == 403
    assert [(r["action"], r["outcome"]) for r in _rows(store, rid)] == [("merge", "denied")]
    ops = dataclasses.replace(AccessContext.operator("test"), request_id=uuid.uuid4().hex)
    patients.merge(store, ops, {"reference": f"Patient/{source}"}, [], {"reference": f"Patient/{target}"}, [], False)
    merged = [r for r in _rows(store, ops.request_id) if r["action"] == "patient.merge"]
    # One record in each patient's trail: both health books show the merge.
    assert sorted((r["outcome"], r["logical_id"], r["compartment"]) for r in merged) == sorted([("success", target, target), ("success", source, source)])


def test_the_trail_of_the_access_world_verifies_with_its_tables(app, client, store, tmp_path, monkeypatch):
    """No false alarm from `audit verify`'s table cross-checks (tests/store/test_audit_coverage.py
    plants the tampering): registrations by staff and systems, an operator's care record, a
    check-in on a consent, consents, a representative, break-glass; then the patient ends a
    facility's care and revokes a consent."""
    from world import CCCD, build, consent

    monkeypatch.setitem(app.config, "EHR_AUDIT_CHECKPOINT_FILE", str(tmp_path / "audit-checkpoints.log"))
    w = build(client, store)
    a, c = w.patient("A"), w.contexts
    assert care.check_in(store, c["doctor_f2_consent"], CCCD["A"]) == a
    care.end(store, c["patient_a"], a, "org-f1")
    permit = resources.create(store, c["patient_a"], consent(a, ["org-f3"])).version
    resources.update(store, c["patient_a"], "Consent", permit.logical_id, {**consent(a, ["org-f3"], status="inactive"), "id": permit.logical_id},
                     if_match=permit.version_id)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["ehr", "audit", "seal"]).exit_code == 0
    verified = runner.invoke(args=["ehr", "audit", "verify"])
    assert verified.exit_code == 0 and verified.output.rstrip().endswith("ok"), verified.output
    assert "Consent versions 5" in verified.output and "break-glass grants 1" in verified.output, verified.output
