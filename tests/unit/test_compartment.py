"""The patient compartment is the R4 CompartmentDefinition's, and every shape lands in it."""

from __future__ import annotations

import json
from pathlib import Path

from ehr.fhir import compartment

DEFS = Path(__file__).resolve().parents[1] / "data" / "fhir-r4" / "definitions"


def test_table_is_derived_from_the_compartment_definition():
    definition = json.loads((DEFS / "compartmentdefinition-patient.json").read_text("utf-8"))
    params = json.loads((DEFS / "search-parameters-patient-compartment.json").read_text("utf-8"))
    assert compartment.derive(definition, params) == {t: list(p) for t, p in compartment.PATIENT_PATHS.items()}
    assert len(compartment.PATIENT_PATHS) == 66
    assert compartment.PATIENT_PATHS["Observation"][0] == "subject"


def test_shared_is_an_allow_list_of_directory_and_conformance_types():
    assert {"Organization", "Location", "Practitioner", "Medication", "ValueSet", "NamingSystem"} <= compartment.SHARED_TYPES
    for private in ("Group", "Binary", "Bundle", "Provenance", "Contract", "Observation", "List", "Basic"):
        assert private not in compartment.SHARED_TYPES
