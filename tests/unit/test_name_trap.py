"""fhir.resources installs a package named `fhir`; ours must not shadow it (design.md)."""


def test_both_fhir_packages_import():
    import fhir.resources
    from fhir.resources.R4B.patient import Patient

    import ehr.fhir
    from ehr.fhir import resources

    assert fhir.resources.__name__ == "fhir.resources"
    assert ehr.fhir.__name__ == "ehr.fhir"
    assert Patient.model_validate({"resourceType": "Patient"}).__class__.__name__ == "Patient"
    assert "Patient" in resources.SERVED_TYPES
