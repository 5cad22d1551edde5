"""The synthetic generator: deterministic, well-formed CCCD numbers, the documented scale."""

from __future__ import annotations

from collections import Counter

from ehr.fhir.validation import validate_resource
from ehr.identity import codetables
from ehr.synthetic.generator import Generator, Scale


def test_same_seed_same_data_and_slices_are_stable():
    a = Generator(seed=7).patient_bundle(3)
    b = list(Generator(seed=7).patients(2, start=2))[1]
    assert a == b
    assert Generator(seed=8).patient_bundle(3) != a


def test_patient_bundle_scale_and_validity():
    bundle = Generator(seed=1).patient_bundle(0)
    counts = Counter(e["resource"]["resourceType"] for e in bundle["entry"])
    assert sum(counts.values()) == Scale().per_patient == 36
    assert counts == {"Patient": 1, "Encounter": 5, "Observation": 20, "Condition": 3, "MedicationRequest": 3, "AllergyIntolerance": 2, "Immunization": 2}
    for entry in bundle["entry"]:
        validate_resource(dict(entry["resource"], id="x"))
        assert entry["fullUrl"].startswith("urn:uuid:")


def test_cccd_agrees_with_birth_year_sex_and_province():
    prefixes = codetables.provinces_pre2025()
    for i in range(200):
        patient = Generator(seed=3).patient_bundle(i, Scale(0, 0, 0, 0, 0, 0))["entry"][0]["resource"]
        cccd = patient["identifier"][0]["value"]
        year = int(patient["birthDate"][:4])
        assert len(cccd) == 12 and cccd.isdigit()
        assert cccd[:3] in prefixes
        assert int(cccd[3]) == (year // 100 - 19) * 2 + (0 if patient["gender"] == "male" else 1)
        assert cccd[4:6] == f"{year % 100:02d}"
        assert patient["name"][0]["text"] == " ".join([patient["name"][0]["family"], *patient["name"][0]["given"]])


def test_addresses_use_the_two_level_scheme():
    patient = Generator(seed=1).patient_bundle(5)["entry"][0]["resource"]
    codes = {e["url"].rsplit("-", 2)[-2]: e["valueCode"] for e in patient["address"][0]["extension"]}
    commune = codetables.communes()[codes["commune"]]
    assert commune.province_code == codes["province"]
