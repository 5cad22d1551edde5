"""The table of free-text limits and its walker (ehr/fhir/text_limits.py): pure, no app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ehr.fhir import text_limits
from ehr.fhir.outcomes import FhirError
from ehr.fhir.validation import validate_resource

DATA = Path(__file__).resolve().parents[1] / "data" / "fhir-r4"


@pytest.mark.parametrize(
    "resource_type,path,limit",
    [
        ("Patient", "name.family", 100),
        ("Patient", "Patient.name[0].given[2]", 100),
        ("Patient", "name.text", 200),
        ("Patient", "contact.name.family", 100),  # a datatype's limit applies wherever it is used
        ("RelatedPerson", "name.text", 200),
        ("Patient", "address.line", 200),
        ("Patient", "address.city", 100),
        ("Patient", "address.district", 100),
        ("Organization", "address.state", 100),
        ("Patient", "telecom.value", 256),
        ("Condition", "code.coding.display", 500),
        ("Procedure", "code.text", 500),
        ("MedicationRequest", "medicationCodeableConcept.text", 200),
        ("MedicationStatement", "medicationCodeableConcept.text", 200),
        ("Medication", "code.text", 200),
        ("MedicationRequest", "dosageInstruction.text", 500),
        ("MedicationRequest", "dosageInstruction.patientInstruction", 500),
        ("MedicationRequest", "note.text", 5000),
        ("Annotation", "text", 5000),
        ("Encounter", "reasonCode.text", 500),
        ("AllergyIntolerance", "code.text", 200),
        ("Condition", "code.text", 500),
        ("Observation", "valueString", 2000),
        ("Composition", "section.text.div", 100_000),
        ("Composition", "section.section.section.text.div", 100_000),  # nested sections
        ("ValueSet", "text.div", text_limits.NARRATIVE),
        ("Task", "description", text_limits.DEFAULT),
        ("CodeSystem", "description", text_limits.DEFAULT),  # markdown
    ],
)
def test_limit_for(resource_type, path, limit):
    assert text_limits.limit_for(resource_type, path) == limit


@pytest.mark.parametrize("path", ["gender", "birthDate", "name", "nothing", "name.nothing", "identifier.system"])
def test_limit_for_refuses_what_is_not_free_text(path):
    with pytest.raises(ValueError):
        text_limits.limit_for("Patient", path)


def test_the_table_names_real_elements():
    for key in text_limits.BY_TYPE:
        datatype, path = key.split(".", 1)
        assert text_limits.limit_for(datatype, path) == text_limits.BY_TYPE[key]
    for key, limit in text_limits.BY_PATH.items():
        resource_type, path = key.split(".", 1)
        assert text_limits.limit_for(resource_type, path) == limit


def test_check_walks_lists_nested_contained_and_primitive_extensions():
    doc = {
        "resourceType": "Patient",
        "name": [{"family": "Nguyễn", "given": ["Thị", "L" * 101]}, {"text": "T" * 201}],
        "address": [{"line": ["a" * 200, "b" * 201], "city": "c" * 101, "postalCode": "1" * 21}],
        "contact": [{"name": {"family": "F" * 150}}],
        "contained": [{"resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": {"reference": "#"},
                       "medicationCodeableConcept": {"text": "d" * 201, "coding": [{"display": "d" * 201}]}}],
        "_gender": {"extension": [{"url": "http://example.org/x", "valueString": "e" * 10_001}]},
    }
    found = {t.expression: (t.limit, t.actual) for t in text_limits.check(doc)}
    assert found == {
        "Patient.name[0].given[1]": (100, 101),
        "Patient.name[1].text": (200, 201),
        "Patient.address[0].line[1]": (200, 201),
        "Patient.address[0].city": (100, 101),
        "Patient.address[0].postalCode": (20, 21),
        "Patient.contact[0].name.family": (100, 150),
        "Patient.contained[0].medicationCodeableConcept.text": (200, 201),
        "Patient._gender.extension[0].valueString": (10_000, 10_001),
    }  # the coding display of 201 characters is under the 500 of Coding.display


def test_codes_uris_and_ids_are_not_counted():
    doc = {"resourceType": "Patient", "implicitRules": "http://example.org/" + "x" * 20_000,
           "identifier": [{"system": "urn:oid:1.2", "value": "1" * 300}]}
    assert text_limits.check(doc) == []


def test_bundle_entries_are_checked_with_their_own_type():
    doc = {"resourceType": "Bundle", "type": "collection",
           "entry": [{"resource": {"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/p"}, "code": {"text": "x" * 201}}}]}
    assert text_limits.check(doc) == [text_limits.TooLong("Bundle.entry[0].resource.code.text", 200, 201)]


def test_validate_resource_answers_422_naming_the_element_and_the_limit():
    with pytest.raises(FhirError) as raised:
        validate_resource({"resourceType": "Patient", "name": [{"family": "N" * 5000}]})
    assert raised.value.status == 422
    (issue,) = raised.value.issues
    assert issue.code == "too-long" and issue.expression == ("Patient.name[0].family",)
    assert "100" in issue.diagnostics and "5,000" in issue.diagnostics and "NNN" not in issue.diagnostics


def _documents() -> list[tuple[str, dict]]:
    out = []
    for path in sorted(DATA.rglob("*.json")):
        if "invalid" in path.parts or path.name == "INDEX.json":
            continue
        doc = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(doc, dict) and "resourceType" in doc:
            out.append((path.relative_to(DATA).as_posix(), doc))
    return out


def test_real_data_is_within_every_limit():
    """The FHIR R4 examples and Synthea's patients (tests/data) pass: no limit refuses real data."""
    documents = _documents()
    assert len(documents) > 50
    over = [(name, t) for name, doc in documents for t in text_limits.check(doc)]
    assert over == []
