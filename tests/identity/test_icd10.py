"""ICD-10 lookup, picker search and code checks (the Ministry's list, QĐ 4469/QĐ-BYT)."""

from __future__ import annotations

import pytest

from ehr.identity import icd10


@pytest.mark.parametrize("typed", ["m0130", "M01.30", " m01.30 ", "M01 30", "M01.30*"])
def test_normalise(typed):
    assert icd10.normalize(typed) == "M01.30"
    assert icd10.lookup(typed).code == "M01.30"  # one of the list's 677 five-character codes


def test_lookup_names_in_both_languages():
    found = icd10.lookup("j069")
    assert found.display_en == "Acute upper respiratory infection, unspecified"
    assert found.display == found.display_vi == "Nhiễm trùng đường hô hấp trên cấp, không phân loại"
    assert found.name("en") == found.display_en and found.name("vi") == found.name(None) == found.display_vi
    assert found.version == icd10.VERSION == "QĐ 4469/2020" and found.national is False
    assert icd10.lookup("U07.1") is not None
    assert icd10.lookup("J06.5") is None  # shaped like ICD-10, not in the list
    assert icd10.lookup("I10").display_en == "Essential (primary) hypertension"  # the source's wrong name is fixed


def test_no_invented_five_character_extensions():
    # The WHO-based index accepted a 5-character code under a known parent; the list does not.
    for code in ("J06.90", "I10.99", "X99.99", "E11.99", "K98.00"):
        assert icd10.lookup(code) is None
        assert "not a code of the ICD-10 list" in icd10.check(code)


def test_marks_and_leaves():
    assert icd10.lookup("G01").mark == "*" and icd10.lookup("A17").mark == "†"
    assert icd10.lookup("E11").leaf is False and icd10.lookup("E11.9").leaf is True
    assert len(icd10.index()) == 12137


@pytest.mark.parametrize(
    ("typed", "fragment"),
    [("", "required"), ("A0", "a letter, two digits"), ("K29.", "a letter, two digits"), ("J06.123", "a letter, two digits"),
     ("J06.5", "not a code"), ("D99.00", "not a code")],
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
    leaves = [d.leaf for d in j0]
    assert leaves == sorted(leaves, reverse=True)  # leaf (billable) codes before their categories
    assert icd10.search("J06.90") == [] and icd10.search("I10.99") == []


def test_search_by_english_words():
    found = icd10.search("HEPATITIS  b delta", 50)
    assert found and all(
        all(any(w.startswith(q) for w in icd10._words(d.display_en)) for q in ("hepatitis", "b", "delta")) for d in found
    )
    assert [d.code for d in found] == [d.code for d in icd10.search("hepatitis b delta", 50)]  # stable
    assert icd10.search("diabetes mellitus", 1)[0].code == "E14"  # "Unspecified diabetes mellitus"
    assert "E11" in [d.code for d in icd10.search("non insulin dependent diabetes", 3)]
    assert icd10.search("pneumonia", 1)[0].code == "J18.9"
    assert icd10.search("xyzzy") == [] and icd10.search("diabetes", 0) == []


def test_a_replacement_list_loads_without_a_code_change(tmp_path):
    import gzip

    names = tmp_path / "list.csv.gz"
    with gzip.open(names, "wt", encoding="utf-8") as fh:
        fh.write("code,mark,name_vi,name_en\nB18,,Viêm gan virus mạn,Chronic viral hepatitis\n"
                 "B18.0,,Viêm gan virus B mạn có đồng nhiễm viêm gan D,Chronic viral hepatitis B with delta-agent\n"
                 "B18.00,,Viêm gan B mạn tính có đồng nhiễm D (mã mới),Chronic hepatitis B with D (new code)\n")
    index = icd10.Icd10Index(names, None, None, None, version="TT 06/2026")
    assert [d.code for d in index.search("VIÊM GAN mới")] == ["B18.00"]
    assert index.lookup("b1800").version == "TT 06/2026" and index.lookup("B18.0").leaf is False
    assert index.lookup("B18.01") is None
