"""The health book service: one $everything with the patient's own context, shaped into the four
groups of QĐ 31/QĐ-BYT, the chart series and the vaccination table."""

from __future__ import annotations

import json

import pytest

from book_seed import context_of
from ehr.fhir.outcomes import FhirError
from ehr.services import care, data_requests, healthbook
from ehr.services.context import AccessContext

OPS = AccessContext.operator("test")


def test_overview_and_the_four_groups(store, world):
    a = world.a
    book = healthbook.book(store, context_of(store, a.patient_id), a.patient_id)
    assert book.name == a.name and book.age is not None
    assert book.national_id == "*" * 9 + a.cccd[-3:] and a.cccd not in json.dumps(book.admin.__dict__, default=str)
    assert book.blood_group.answer == "LA21321-7" and book.height.text == "160" and book.weight.text == "62"
    assert [i.code for i in book.chronic] == ["E11.9", "I10"] and book.allergies
    # administrative: BHYT card and the legal representative
    [card] = book.admin.coverages
    assert len(card.card) == 15 and card.registered_facility.startswith("Phòng khám")
    [guardian] = [c for c in book.admin.contacts if c.legal_representative]
    assert guardian.name == "Nguyễn Văn Hùng" and guardian.phone == "0912345678"
    # history
    assert [s.name for s in book.surgeries] == ["Cắt ruột thừa nội soi"] and book.family[0].conditions == ("Tăng huyết áp",)
    # visits, newest first; the clinic's visit with its diagnoses (main first) and treatment summary
    assert [v.id for v in book.visits] == a.encounters
    latest = book.latest_visit
    assert [(d.code, d.main) for d in latest.diagnoses] == [("I10", True), ("E11.9", False)]
    assert latest.facility and latest.reason.startswith("Tái khám") and latest.medicines[0].name == "Amlodipin 5 mg"
    assert latest.advice.splitlines() == ["Ăn nhạt, đi bộ 30 phút mỗi ngày.", "Đo huyết áp mỗi sáng."]
    assert latest.revisit is not None and book.next_appointment == latest.revisit
    older = book.visits[1]
    assert {m.code for m in older.labs} == {"14749-6", "4548-4"} and older.doctor


def test_series_count_every_measurement_with_its_normal_range(store, world):
    a = world.a
    series = {s.key: s for s in healthbook.book(store, context_of(store, a.patient_id), a.patient_id).series}
    assert series["bp"].count == a.bp_readings and len(series["bp"].lines) == 2
    assert series["14749-6"].count == a.lab_points["14749-6"] and [str(v) for v in series["14749-6"].ranges[0]] == ["3.9", "6.4"]
    assert series["4548-4"].count == a.lab_points["4548-4"]
    assert {"weight", "bmi"} <= set(series)


def test_vaccinations_by_vaccine_and_dose(store, world):
    a = world.a
    book = healthbook.book(store, context_of(store, a.patient_id), a.patient_id)
    assert sum(len(r.doses) for r in book.vaccines) == len(book.shots) == 4
    for row in book.vaccines:
        doses = [d.dose for d in row.doses]
        assert doses == sorted(doses) and all(d.facility for d in row.doses)


def test_the_book_is_read_with_the_patients_context_and_audited(store, world):
    a, b = world.a, world.b
    me = context_of(store, a.patient_id)
    with pytest.raises(FhirError) as refused:
        healthbook.book(store, me, b.patient_id)
    assert refused.value.status == 404
    with pytest.raises(FhirError):
        healthbook.visit(store, me, a.patient_id, b.encounters[0])  # another patient's visit in my book's URL


def test_a_representative_switches_to_the_patient_they_represent(store, world):
    a, b = world.a, world.b
    guardian = context_of(store, b.patient_id)
    care.add_representative(store, OPS, guardian.account_id, a.patient_id)
    assert [(p.patient_id, p.own) for p in healthbook.people(store, guardian)] == [(b.patient_id, True), (a.patient_id, False)]
    assert healthbook.book(store, guardian, a.patient_id).name == a.name
    task = healthbook.for_patient(store, guardian, a.patient_id)
    assert a.patient_id in task.dependants
    assert data_requests.submit(store, task, "correction", "Sửa số điện thoại của con", a.patient_id)


def test_download_is_the_whole_record_as_a_bundle(store, world):
    a = world.a
    me = context_of(store, a.patient_id)
    found = healthbook.download(store, me, a.patient_id, "https://ehr.example/fhir")
    bundle = json.loads(found.body)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    types = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"Patient", "Encounter", "Observation", "Condition", "Immunization", "Coverage", "RelatedPerson", "Composition", "Organization"} <= types
    assert all(e["fullUrl"] == f"https://ehr.example/fhir/{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"])
    assert found.filename.startswith("Sổ-sức-khỏe-điện-tử-") and found.ascii_filename.startswith("So-suc-khoe-dien-tu-")
    assert "filename*=UTF-8''S%E1%BB%95-s%E1%BB%A9c" in found.content_disposition
