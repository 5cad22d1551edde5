"""The curated visit-form code tables in ehr/data/vn (see its README.md for the sources)."""

from __future__ import annotations

import dataclasses
import re
import unicodedata

import pytest

from ehr.identity import clinical_codes as cc

TABLES = {
    "vaccines": (cc.vaccines, r"\d{2,3}"),
    "routes": (cc.routes, r"[1-9]\d{5,17}"),
    "sites": (cc.sites, r"[A-Z]{2,4}|[1-9]\d{5,17}"),
    "encounter_classes": (cc.encounter_classes, r"[a-z]+"),
    "blood_groups": (cc.blood_groups, r"LA\d{4,5}-\d"),
    "frequencies": (cc.frequencies, r"[a-z0-9]+"),
    "relationships": (cc.relationships, r"[A-Z]{3,9}"),
}

# CVX code -> CDC short description, as printed in the sources named in ehr/data/vn/README.md:
# https://www2a.cdc.gov/vaccines/iis/iisstandards/vaccines.asp?rpt=cvx (snapshot of 2025-09-03 in a
# FHIR ValueSet "Immunization / All / CVX"), https://www2a.cdc.gov/vaccines/iis/iisstandards/vaccines.asp?rpt=vg
# and https://hl7.org/fhir/us/core/stu3.1.1/ValueSet-us-core-vaccines-cvx.html (01-08, 101).
CVX_IN_SOURCES = {
    "01": "DTP", "03": "MMR", "04": "M/R", "05": "measles", "08": "Hep B, adolescent or pediatric", "10": "IPV",
    "17": "Hib, unspecified formulation", "18": "rabies, intramuscular injection", "19": "BCG", "21": "varicella",
    "33": "pneumococcal polysaccharide PPV23", "35": "tetanus toxoid, adsorbed", "37": "yellow fever live",
    "39": "Japanese encephalitis SC", "40": "rabies, intradermal injection", "43": "Hep B, adult",
    "62": "HPV, quadrivalent", "85": "Hep A, unspecified formulation", "88": "influenza, unspecified formulation",
    "90": "rabies, unspecified formulation", "101": "typhoid, ViCPs", "104": "Hep A-Hep B",
    "109": "pneumococcal, unspecified formulation", "114": "meningococcal MCV4P", "115": "Tdap",
    "116": "rotavirus, pentavalent", "119": "rotavirus, monovalent", "122": "rotavirus, unspecified formulation",
    "129": "Japanese Encephalitis, unspecified formulation", "130": "DTaP-IPV", "133": "Pneumococcal conjugate PCV 13",
    "137": "HPV, unspecified formulation", "139": "Td(adult) unspecified formulation", "146": "DTaP,IPV,Hib,HepB",
    "163": "meningococcal B, OMV", "165": "HPV9", "170": "DTAP/IPV/HIB - non-US", "173": "cholera, BivWC",
    "177": "PCV10", "178": "OPV bivalent", "187": "zoster recombinant", "190": "Typhoid conjugate vaccine (TCV)",
    "198": "DTP-hepB-Hib Pentavalent Non-US", "203": "meningococcal conjugate quadrivalent, MenACWY-TT (MCV4)",
    "207": "COVID-19, mRNA, LNP-S, PF, 100 mcg/0.5mL dose or 50 mcg/0.25mL dose",
    "208": "COVID-19, mRNA, LNP-S, PF, 30 mcg/0.3 mL dose", "210": "COVID-19 vaccine, vector-nr, rS-ChAdOx1, PF, 0.5 mL",
    "213": "SARS-COV-2 (COVID-19) vaccine, UNSPECIFIED",
    "215": "Pneumococcal conjugate PCV15, polysaccharide CRM197 conjugate, adjuvant, PF",
    "216": "Pneumococcal conjugate PCV20, polysaccharide CRM197 conjugate, adjuvant, PF",
    "330": "Dengue fever, unspecified", "510": "COVID-19 IV Non-US Vaccine (BIBP, Sinopharm)",
}

# Verhoeff tables: multiplication in the dihedral group D5, and the position permutation.
_VERHOEFF_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]
_VERHOEFF_P = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4]]
for _ in range(6):
    _VERHOEFF_P.append([_VERHOEFF_P[1][d] for d in _VERHOEFF_P[-1]])


def _snomed_check_digit_ok(sctid: str) -> bool:
    """SNOMED CT identifiers end in a Verhoeff check digit: catches a mistyped or swapped digit."""
    check = 0
    for i, digit in enumerate(reversed(sctid)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[i % 8][int(digit)]]
    return check == 0


@pytest.mark.parametrize("name", TABLES)
def test_codes_unique_shaped_and_named_in_both_languages(name):
    load, shape = TABLES[name]
    rows = load()
    assert isinstance(rows, tuple) and rows and load() is rows
    assert len({r.code for r in rows}) == len(rows)
    for row in rows:
        assert re.fullmatch(shape, row.code), row.code
        for text in (row.vi, row.en):
            assert text.strip() == text and text and unicodedata.is_normalized("NFC", text), row.code
        assert cc.label(row, "vi") == row.vi and cc.label(row, "en-US") == row.en
    with pytest.raises(dataclasses.FrozenInstanceError):
        rows[0].code = "x"


def test_label_rejects_other_languages():
    with pytest.raises(ValueError):
        cc.label(cc.routes()[0], "fr")


def test_cvx_codes_are_the_ones_in_the_sources():
    assert {v.code: v.display for v in cc.vaccines()} == CVX_IN_SOURCES
    assert all(v.system == "http://hl7.org/fhir/sid/cvx" for v in cc.vaccines())
    programme = {v.code for v in cc.vaccines() if v.epi}
    assert {"19", "08", "198", "178", "10", "05", "04", "39"} <= programme  # BCG, HepB birth, 5-in-1, polio, measles, MR, JE
    assert {"146", "170"}.isdisjoint(programme)  # hexavalent / Pentaxim are paid services


def test_snomed_codes_have_valid_check_digits():
    codes = [r.code for r in cc.routes()] + [s.code for s in cc.sites() if s.system == cc.SNOMED]
    codes += [b.snomed for b in cc.blood_groups()]
    assert all(_snomed_check_digit_ok(c) for c in codes)
    assert not _snomed_check_digit_ok("26643007")


def test_sites_routes_and_classes_use_the_expected_systems():
    assert {s.system for s in cc.sites()} == {cc.ACT_SITE, cc.SNOMED}
    assert {"LD", "RD", "LVL", "RVL", "LT", "RT", "LA", "RA"} <= {s.code for s in cc.sites()}
    assert cc.by_code(cc.routes(), "78421000").abbr == "IM"
    assert {e.class_code for e in cc.encounter_classes()} <= {"AMB", "IMP", "EMER", "VR", "HH"}
    assert cc.by_code(cc.encounter_classes(), "checkup").coding() == {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "ambulatory"}
    assert {"MTH", "FTH", "GUARD", "SPS", "CHILD"} <= {r.code for r in cc.relationships()}


def test_blood_groups_cover_abo_and_rh():
    assert {(b.abo, b.rh) for b in cc.blood_groups()} == {(g, rh) for g in ("A", "B", "AB", "O") for rh in "+-"}
    assert cc.by_code(cc.blood_groups(), "LA21321-7").display == "O Pos"


def test_frequencies_as_fhir_timing():
    f = {x.code: x for x in cc.frequencies()}
    assert f["tid"].timing()["repeat"] == {"frequency": 3, "period": 1, "periodUnit": "d"}
    assert f["q8h"].timing()["repeat"] == {"frequency": 1, "period": 8, "periodUnit": "h"}
    assert f["q8h"].timing()["code"]["coding"] == [{"system": cc.GTS_ABBREVIATION, "code": "Q8H"}]
    assert f["bed"].timing()["repeat"]["when"] == ["HS"]
    assert f["prn"].as_needed and f["prn"].timing() == {}
    assert {x.gts_code for x in f.values()} <= {"", "QD", "BID", "TID", "QID", "Q6H", "Q8H", "BED"}
