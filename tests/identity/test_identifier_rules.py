"""Table-driven tests of the Vietnamese identifier rules (pure functions)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ehr.identity import codetables, rules


@pytest.mark.parametrize("value", ["001190012345", "079188012345", " 0791 8801 2345 ", "099199999999"])
def test_cccd_valid(value):
    assert rules.check_cccd(value) == rules.compact(value)


@pytest.mark.parametrize("value", ["", "07918801234", "0791880123456", "07918801234a", "079-188-012345", "O79188012345", "٠٧٩١٨٨٠١٢٣٤٥"])
def test_cccd_invalid_is_a_hard_error_without_the_value(value):
    with pytest.raises(rules.IdentifierError) as caught:
        rules.check_cccd(value)
    assert "exactly 12 digits" in str(caught.value)
    if value.strip():
        assert value.strip() not in str(caught.value)


def test_all_63_pre_2025_province_prefixes_are_known():
    prefixes = codetables.provinces_pre2025()
    assert len(prefixes) == 63
    for prefix in prefixes:
        assert not [w for w in rules.cccd_warnings(f"{prefix}090000001", "1990-01-01", "male") if w.code == "cccd-prefix"], prefix


@pytest.mark.parametrize("prefix", ["000", "003", "097", "100", "999"])
def test_unknown_prefix_is_only_a_warning(prefix):
    assert [w.code for w in rules.cccd_warnings(f"{prefix}090000001", "1990-01-01", "male")] == ["cccd-prefix"]


@pytest.mark.parametrize("digit", range(10))
def test_century_and_sex_digit(digit):
    century = 1900 + 100 * (digit // 2)
    sex = "male" if digit % 2 == 0 else "female"
    number = f"001{digit}90123456"
    assert rules.cccd_warnings(number, f"{century + 90}-01-01", sex) == []
    other_sex = "female" if sex == "male" else "male"
    assert [w.code for w in rules.cccd_warnings(number, f"{century + 90}-01-01", other_sex)] == ["cccd-sex"]
    wrong_century = f"{century - 100 + 90}-01-01" if century > 1900 else f"{century + 100 + 90}-01-01"
    assert [w.code for w in rules.cccd_warnings(number, wrong_century, sex)] == ["cccd-century"]


def test_birth_year_digits():
    assert [w.code for w in rules.cccd_warnings("001090123456", "1991-05-01", "male")] == ["cccd-birth-year"]
    assert rules.cccd_warnings("001090123456", "1990", "male") == []  # year-only birth date
    assert rules.cccd_warnings("001090123456", None, None) == []  # nothing to compare


@pytest.mark.parametrize("value,ok", [("123456789", True), ("012345678901", True), ("12345678", False), ("1234567890", False), ("12345678A", False)])
def test_cmnd(value, ok):
    if ok:
        assert rules.check_cmnd(value) == value
    else:
        with pytest.raises(rules.IdentifierError, match="9 or 12 digits"):
            rules.check_cmnd(value)


@pytest.mark.parametrize(
    "value,form,group,level,bhxh",
    [
        ("DN4010123456789", "legacy15", "DN", "4", "0123456789"),
        ("dn4 01 0123456789", "legacy15", "DN", "4", "0123456789"),
        ("0123456789", "bhxh10", None, None, "0123456789"),
        ("079188012345", "cccd12", None, None, None),
    ],
)
def test_bhyt_three_forms(value, form, group, level, bhxh):
    card = rules.parse_bhyt(value)
    assert (card.form, card.group, card.benefit_level, card.bhxh) == (form, group, level, bhxh)


@pytest.mark.parametrize("value,message", [("DN6010123456789", "benefit-level"), ("DN4000123456789", "province"), ("DN401012345678", "15-character"), ("123456789", "15-character"), ("D14010123456789", "15-character")])
def test_bhyt_invalid(value, message):
    with pytest.raises(rules.IdentifierError, match=message):
        rules.parse_bhyt(value)


def test_bhyt_unknown_group_is_a_warning():
    assert [w.code for w in rules.bhyt_warnings(rules.parse_bhyt("ZZ4010123456789"))] == ["bhyt-group"]
    assert rules.bhyt_warnings(rules.parse_bhyt("HT3790123456789")) == []


@pytest.mark.parametrize("value,ok,warn", [("01001", True, False), ("97001", True, False), ("00001", True, True), ("0100", False, False), ("0100A", False, False)])
def test_facility_code(value, ok, warn):
    if not ok:
        with pytest.raises(rules.IdentifierError, match="5 digits"):
            rules.check_facility(value)
        return
    assert bool(rules.facility_warnings(rules.check_facility(value))) is warn


def test_temporary_ids_never_look_like_a_cccd():
    for _ in range(200):
        tmp = rules.new_temporary_id()
        assert rules.check_temporary(tmp) == tmp
        with pytest.raises(rules.IdentifierError):
            rules.check_cccd(tmp)
    for bad in ("079188012345", "TMP-2026-ABCDEF", "tmp-20260101-abcde1"):
        with pytest.raises(rules.IdentifierError):
            rules.check_temporary(bad)


@pytest.mark.parametrize(
    "full,family,given",
    [("Nguyễn Thị Ngọc Ánh", "Nguyễn", ["Thị", "Ngọc", "Ánh"]), ("  Lê   Văn  Tám ", "Lê", ["Văn", "Tám"]), ("Tôn Thất Thuyết", "Tôn Thất", ["Thuyết"]), ("Mai", "Mai", [])],
)
def test_split_name(full, family, given):
    text, fam, giv = rules.split_name(full)
    assert (fam, giv) == (family, given)
    assert text == " ".join(full.split())


@given(st.text(alphabet="0123456789 \t", min_size=0, max_size=30))
def test_compact_is_idempotent_and_removes_only_whitespace(value):
    once = rules.compact(value)
    assert rules.compact(once) == once and once == value.replace(" ", "").replace("\t", "")


@given(st.from_regex(r"\A[0-9]{12}\Z", fullmatch=True), st.integers(min_value=0, max_value=4))
def test_any_twelve_digits_pass_whatever_the_spacing(number, spaces):
    spaced = (" " * spaces).join([number[:4], number[4:8], number[8:]])
    assert rules.check_cccd(spaced) == number
