"""The Ministry's ICD-10 list (QĐ 4469/QĐ-BYT) in Vietnamese: search with and without diacritics,
and its validity rules (main diagnosis, sex, age, dagger/asterisk pairs)."""

from __future__ import annotations

import time
import unicodedata
from datetime import date

import pytest

from ehr.crypto.blind import fold_text
from ehr.identity import icd10

# query -> a code (or code prefix) among the first five results; checked against the list's names.
COMMON = {
    "tăng huyết áp": "I10",
    "đái tháo đường typ 2": "E11",
    "viêm họng cấp": "J02.9",
    "viêm phổi": "J18",
    "sốt xuất huyết dengue": "A97",
    "viêm dạ dày": "K29",
    "hen phế quản": "J45",
    "cảm cúm": "J1",  # J10 / J11 "Cúm ..."
    "viêm phế quản cấp": "J20",
    "viêm mũi dị ứng": "J30",
    "đau đầu": "R51",
    "thoái hóa khớp gối": "M17",
    "đau lưng": "M54",
    "viêm tai giữa": "H6",
    "thủy đậu": "B01",
    "lao phổi": "A15",
    "suy tim": "I50",
    "trầm cảm": "F32",
    "thiếu máu thiếu sắt": "D50",
    "viêm kết mạc": "H10",
    "sâu răng": "K02",
    "viêm da cơ địa": "L20",
    "nhồi máu cơ tim": "I21",
    "nhiễm trùng đường tiết niệu": "N39.0",
    "tay chân miệng": "B08.4",
    "viêm amidan": "J03",
    "zona": "B02",
}


def _plain(text: str) -> str:
    """The query typed without diacritics (and đ as d), as on a keyboard without Telex."""
    return fold_text(text)


@pytest.mark.parametrize("query", sorted(COMMON))
def test_common_vietnamese_queries_with_and_without_diacritics(query):
    expected = COMMON[query]
    for typed in (query, _plain(query), query.upper()):
        codes = [d.code for d in icd10.search(typed, 5)]
        assert any(c.startswith(expected) for c in codes), (typed, codes)


def test_ranking_puts_the_usual_code_first():
    assert icd10.search("tăng huyết áp", 1)[0].code == "I10"
    assert icd10.search("tang huyet ap", 1)[0].code == "I10"
    assert icd10.search("đái tháo đường typ 2", 1)[0].code == "E11"
    assert icd10.search("viêm họng cấp", 1)[0].code == "J02.9"
    assert icd10.search("viêm phổi", 1)[0].code == "J18.9"
    assert [d.code for d in icd10.search("sốt xuất huyết dengue", 1)] == ["A97"]
    # the accents typed count: "viêm họng" is the throat (họng), before anything folded the same
    assert icd10.search("viêm họng", 1)[0].display_vi.startswith("Viêm họng")


def test_the_issue_queries_no_longer_find_nothing():
    for query in ("đái tháo đường", "tăng huyết áp", "viêm họng"):
        assert len(icd10.search(query)) >= 10


def test_decomposed_input_is_the_same_query():
    nfd = unicodedata.normalize("NFD", "viêm họng cấp")
    assert [d.code for d in icd10.search(nfd)] == [d.code for d in icd10.search("viêm họng cấp")]


def test_search_is_fast():
    icd10.index()
    started = time.perf_counter()
    for query in ("viêm", "benh", "tăng huyết áp", "diabetes", "J0", "sot xuat huyet"):
        icd10.search(query, 15)
    assert (time.perf_counter() - started) * 1000 < 250  # six searches; about 6 ms measured


# --- validity rules -------------------------------------------------------------------------------


def keys(problems):
    return [(p.index, p.message_key) for p in problems]


def test_codes_outside_the_list_are_refused():
    assert keys(icd10.validate(["X99.99", "I10.99", "I10"])) == [(0, "unknown"), (1, "unknown")]


def test_a_code_that_must_not_be_the_main_diagnosis():
    assert keys(icd10.validate(["B95.0"])) == [(0, "not_main")]  # A2: a cause of diseases classified elsewhere
    assert icd10.validate(["J02.9", "B95.0"]) == []  # as a secondary code it is fine


def test_sex_validity():
    assert keys(icd10.validate(["O03.9"], "male")) == [(0, "female_only")]
    assert keys(icd10.validate(["J06.9", "N40"], "female")) == [(1, "male_only")]
    assert icd10.validate(["O03.9"], "female") == [] and icd10.validate(["O03.9"], "unknown") == []
    assert icd10.validate(["O03.9"], None) == []


def test_age_validity():
    newborn = icd10.validate(["P07.3"], None, 2 * 365)
    assert keys(newborn) == [(0, "age")] and (newborn[0].unit, newborn[0].low, newborn[0].high, newborn[0].appendix) == ("d", 0, 365, "A3.1")
    assert icd10.validate(["P07.3"], None, 20) == []
    old = icd10.validate(["H25.0"], None, 10 * 365)  # senile cataract: over 30 years
    assert keys(old) == [(0, "age")] and (old[0].unit, old[0].low, old[0].high) == ("y", 31, None)
    assert icd10.validate(["H25.0"], None, 40 * 365) == []
    assert icd10.validate(["H25.0"], None, None) == []  # no birth date: not checked
    days, years = icd10.age(date(1996, 3, 1), date(2026, 2, 28))
    assert years == 29 and keys(icd10.validate(["H25.0"], None, days, years)) == [(0, "age")]
    assert icd10.age("1996", date(2026, 1, 1)) == (None, None) and icd10.age("1996-03-01", date(2026, 3, 1))[1] == 30


def test_an_asterisk_code_needs_its_dagger_code_in_the_same_visit():
    alone = icd10.validate(["J06.9", "G01"])  # G01*: meningitis in bacterial diseases classified elsewhere
    assert keys(alone) == [(1, "asterisk_without_dagger")] and "A01.0" in alone[0].daggers
    assert icd10.validate(["A01.0", "G01"]) == []  # typhoid fever† with its meningitis*
    assert keys(icd10.validate(["G01", "A01.0"])) == [(0, "not_main")]  # the dagger code is the main one


def test_validate_is_fast():
    icd10.index()
    started = time.perf_counter()
    for _ in range(1000):
        icd10.validate(["A01.0", "G01", "O03.9", "H25.0"], "male", 3650)
    assert time.perf_counter() - started < 1.0
