"""Recording and signing a visit through the services (the pages call these)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from ehr.fhir import jsonio
from ehr.fhir import visit as v
from ehr.fhir.outcomes import FhirError
from ehr.services import care, policy, resources, signing, visits
from ehr.services.context import AccessContext
from fhir_helpers import patient

OPERATOR = AccessContext.operator("test")


@pytest.fixture
def clinic(app, store):
    org = resources.create(store, OPERATOR, {"resourceType": "Organization", "name": "Phòng khám Hòa Bình"}).version.logical_id
    pid = resources.create(store, OPERATOR, patient()).version.logical_id
    care.record(store, OPERATOR, pid, org)
    doctor = policy.staff_context(str(uuid.uuid4()), org, "doctor")
    return org, pid, doctor, app.extensions["ehr.signing"]


def a_visit(org: str, pid: str, token: str | None = None) -> v.Visit:
    return v.Visit(
        patient_id=pid, organization_id=org, token=token or str(uuid.uuid4()), started=datetime(2026, 11, 24, 9, tzinfo=timezone.utc),
        reason="Sốt, ho", vitals={"systolic": Decimal(120), "diastolic": Decimal(80), "temperature": Decimal("38.5"),
                                  "height": Decimal(160), "weight": Decimal("55.5")},
        diagnoses=[v.Diagnosis("J06.9", "Acute upper respiratory infection"), v.Diagnosis("E11.9", "Type 2 diabetes mellitus")],
        prescriptions=[v.Prescription("Paracetamol 500 mg", Decimal(1), "viên", "26643006", "Oral", 3, 5, Decimal(15), "Uống sau ăn")],
        note="Họng đỏ", advice="Uống nhiều nước", revisit=date(2026, 12, 1),
    )


def codes(store, ctx, rtype, pid):
    from ehr.services import search
    page = search.search(store, ctx, rtype, [("patient", pid)])
    return [jsonio.loads_stored(r.body) for r, mode in page.entries if mode == "match"]


def test_a_visit_is_standard_fhir_and_bmi_is_computed(store, clinic):
    org, pid, doctor, _ = clinic
    encounter = visits.record(store, doctor, a_visit(org, pid))
    enc = jsonio.loads_stored(resources.read(store, doctor, "Encounter", encounter).body)
    assert [d["rank"] for d in enc["diagnosis"]] == [1, 2]
    observations = codes(store, doctor, "Observation", pid)
    by_code = {o["code"]["coding"][0]["code"]: o for o in observations}
    assert by_code["39156-5"]["valueQuantity"] == {"value": Decimal("21.7"), "unit": "kg/m2", "system": "http://unitsofmeasure.org", "code": "kg/m2"}
    assert by_code["8310-5"]["valueQuantity"]["code"] == "Cel"
    assert {c["code"] for c in by_code["85354-9"]["component"][0]["code"]["coding"]} == {"8480-6"}


def test_submitting_the_same_form_twice_writes_nothing_new(store, clinic):
    org, pid, doctor, _ = clinic
    token = str(uuid.uuid4())
    first = visits.record(store, doctor, a_visit(org, pid, token))
    again = visits.record(store, doctor, a_visit(org, pid, token))
    assert first == again
    assert len(codes(store, doctor, "Condition", pid)) == 2


def test_signed_visit_is_read_only_and_verifies(store, clinic):
    org, pid, doctor, keys = clinic
    encounter = visits.record(store, doctor, a_visit(org, pid))
    provenance = signing.sign_visit(store, doctor, keys, encounter)
    report = signing.verify(store, doctor, keys, provenance)
    assert report.ok, report.problems
    assert len(report.targets) == 12  # encounter, 5 observations (bp, temperature, height, weight, bmi), 2 diagnoses, 1 prescription, summary, re-visit, patient
    condition = codes(store, doctor, "Condition", pid)[0]
    for attempt in (lambda: resources.update(store, doctor, "Condition", condition["id"], condition),
                    lambda: resources.patch(store, doctor, "Condition", condition["id"], [{"op": "remove", "path": "/note"}]),
                    lambda: resources.delete(store, doctor, "Condition", condition["id"])):
        with pytest.raises(FhirError) as refused:
            attempt()
        assert refused.value.status == 409
    with pytest.raises(FhirError) as twice:
        signing.sign_visit(store, doctor, keys, encounter)
    assert twice.value.status == 409


def test_an_amendment_is_a_new_signed_version(store, clinic):
    org, pid, doctor, keys = clinic
    encounter = visits.record(store, doctor, a_visit(org, pid))
    first = signing.sign_visit(store, doctor, keys, encounter)
    condition = codes(store, doctor, "Condition", pid)[0]
    condition["note"] = [{"text": "Sửa chẩn đoán"}]
    second = signing.amend(store, doctor, keys, "Condition", condition["id"], condition)
    assert signing.verify(store, doctor, keys, first).ok and signing.verify(store, doctor, keys, second).ok
    assert resources.read(store, doctor, "Condition", condition["id"]).version_id == 2


def test_a_forged_version_breaks_the_signature(app, store, clinic):
    org, pid, doctor, keys = clinic
    encounter = visits.record(store, doctor, a_visit(org, pid))
    provenance = signing.sign_visit(store, doctor, keys, encounter)
    other = signing.FacilityKeys(keys.directory / "elsewhere", create_missing=True)
    assert not signing.verify(store, doctor, other, provenance).ok  # another key: unknown signer


def test_nurses_and_systems_do_not_sign(store, clinic):
    org, pid, doctor, keys = clinic
    encounter = visits.record(store, doctor, a_visit(org, pid))
    nurse = policy.staff_context(str(uuid.uuid4()), org, "nurse")
    with pytest.raises(FhirError) as refused:
        signing.sign_visit(store, nurse, keys, encounter)
    assert refused.value.status == 403


def test_the_api_refuses_to_change_a_signed_resource(client, store, clinic):
    org, pid, doctor, keys = clinic
    encounter = visits.record(store, doctor, a_visit(org, pid))
    signing.sign_visit(store, doctor, keys, encounter)
    condition = codes(store, doctor, "Condition", pid)[0]
    changed = client.put(f"/fhir/Condition/{condition['id']}", data=jsonio.canonical(condition), content_type="application/fhir+json")
    assert changed.status_code == 409
    assert changed.get_json()["resourceType"] == "OperationOutcome"
    assert "signed" in changed.get_json()["issue"][0]["diagnostics"]
    assert client.delete(f"/fhir/Encounter/{encounter}").status_code == 409


def test_the_cli_verifies_a_signature(app, store, clinic):
    org, pid, doctor, keys = clinic
    provenance = signing.sign_visit(store, doctor, keys, visits.record(store, doctor, a_visit(org, pid)))
    result = app.test_cli_runner().invoke(args=["ehr", "signing", "verify", provenance])
    assert result.exit_code == 0 and result.output.strip().endswith("ok"), result.output


def test_the_patient_sees_a_visit_only_once_it_is_signed(store, clinic):
    from ehr.services import healthbook
    org, pid, doctor, keys = clinic
    me = policy.patient_context("acct-me", pid)
    encounter = visits.record(store, doctor, a_visit(org, pid))
    book = healthbook.book(store, me, pid)
    assert book.visit(encounter) is None and not book.illnesses and not book.medicines and book.height is None  # the clinic's draft
    signing.sign_visit(store, doctor, keys, encounter)
    book = healthbook.book(store, me, pid)
    assert book.visit(encounter) is not None and book.illnesses and book.medicines and book.height is not None
