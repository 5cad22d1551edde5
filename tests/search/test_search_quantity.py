"""Quantity and number search: implicit precision, prefixes, value|system|code."""

from __future__ import annotations

from decimal import Decimal

from search_helpers import ids, make, obs

UCUM = "http://unitsofmeasure.org"


def _q(client, value, unit="mmol/L", system=UCUM):
    return make(client, obs(valueQuantity={"value": Decimal(value), "unit": unit, "system": system, "code": unit}))


def test_quantity_prefixes_and_precision(client):
    low, mid, high = _q(client, "5.34"), _q(client, "5.4"), _q(client, "5.46")
    edge = _q(client, "5.35")
    assert ids(client, "/fhir/Observation", **{"value-quantity": "5.4"}) == {mid, edge}  # [5.35, 5.45)
    assert ids(client, "/fhir/Observation", **{"value-quantity": "gt5.4"}) == {high}
    assert ids(client, "/fhir/Observation", **{"value-quantity": "ge5.4"}) == {mid, high}
    assert ids(client, "/fhir/Observation", **{"value-quantity": "lt5.4"}) == {low, edge}
    assert ids(client, "/fhir/Observation", **{"value-quantity": "le5.35"}) == {low, edge}
    assert ids(client, "/fhir/Observation", **{"value-quantity": "ne5.4"}) == {low, high}
    assert ids(client, "/fhir/Observation", **{"value-quantity": "ap5.4"}) == {low, mid, high, edge}


def test_quantity_system_and_unit(client):
    mmol = _q(client, "7", "mmol/L")
    mg = _q(client, "7", "mg/dL")
    assert ids(client, "/fhir/Observation", **{"value-quantity": f"7|{UCUM}|mmol/L"}) == {mmol}
    assert ids(client, "/fhir/Observation", **{"value-quantity": "7||mg/dL"}) == {mg}
    assert ids(client, "/fhir/Observation", **{"value-quantity": "7"}) == {mmol, mg}
    assert client.get("/fhir/Observation?value-quantity=seven").status_code == 400
    assert client.get("/fhir/Observation?value-quantity=5|x").status_code == 400


def test_component_quantity_and_number(client):
    bp = make(client, obs(code="85354-9", component=[
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}, "valueQuantity": {"value": 150, "unit": "mm[Hg]"}}]))
    assert ids(client, "/fhir/Observation", **{"component-value-quantity": "gt140"}) == {bp}
    assert ids(client, "/fhir/Observation", **{"combo-code": "8480-6"}) == {bp}
    pid = make(client, {"resourceType": "Patient"})
    risk = make(client, {"resourceType": "RiskAssessment", "status": "final", "subject": {"reference": f"Patient/{pid}"},
                         "prediction": [{"probabilityDecimal": Decimal("0.35")}]})
    assert ids(client, "/fhir/RiskAssessment", probability="gt0.3") == {risk}
    assert ids(client, "/fhir/RiskAssessment", probability="0.35") == {risk}
    assert ids(client, "/fhir/RiskAssessment", probability="lt0.3") == set()
