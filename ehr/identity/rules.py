"""Vietnamese identifier rules as pure functions (no Flask, no database).

Sources: domain brief sections 1-2 (Luật Căn cước 26/2023 Art. 12; TT 07/2016/TT-BCA Art. 7 and
Appendix 1 for the structure as issued; QĐ 1351/QĐ-BHXH and NĐ 188/2025 for the BHYT card;
QĐ 384/QĐ-BYT for facility codes). Hard rules raise `IdentifierError`; structural facts that may
legitimately disagree (re-issued numbers, data-entry slips) come back as warnings.

Messages never contain the number itself: they end up in responses and client logs.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import date

from ehr.identity import codetables

_TWELVE = re.compile(r"^\d{12}$", re.ASCII)
_NINE = re.compile(r"^\d{9}$", re.ASCII)
_TEN = re.compile(r"^\d{10}$", re.ASCII)
_FIVE = re.compile(r"^\d{5}$", re.ASCII)
_BHYT15 = re.compile(r"^([A-Z]{2})(\d)(\d{2})(\d{10})$", re.ASCII)
_TEMPORARY = re.compile(r"^TMP-(\d{8})-([A-Z2-7]{6})$", re.ASCII)

# Beneficiary groups seen on BHYT cards (QĐ 1351/QĐ-BHXH as described in the domain brief; the
# list was reworked by Luật 51/2024 and NĐ 188/2025, so an unknown group is only a warning).
KNOWN_BHYT_GROUPS = {
    "DN", "HX", "CH", "NN", "TK", "HC", "XK", "HT", "TB", "NO", "CT", "XB", "TN", "CS", "QN", "CA", "CY",
    "XN", "MS", "CC", "CK", "CB", "KC", "HD", "TE", "BT", "HN", "DT", "DK", "XD", "TS", "TC", "TQ", "TA",
    "TY", "HG", "LS", "PV", "CN", "HS", "SV", "GB", "GD", "TL", "XV",
}
# Province part of facility codes: the pre-2025 2-digit codes, plus 97 (defence) and 98 (police).
FACILITY_SPECIAL = {"97", "98"}


class IdentifierError(ValueError):
    """A hard rule failed; the message names the rule, never the value."""


@dataclass(frozen=True)
class Warning:
    code: str
    message: str


def compact(value: str) -> str:
    """Remove the spaces people type inside numbers ('079 188 012 345')."""
    return "".join(value.split())


# --- CCCD / personal ID number ------------------------------------------------------------------


def check_cccd(value: str) -> str:
    """The normalised 12-digit personal ID number, or IdentifierError."""
    number = compact(value)
    if not _TWELVE.match(number):
        raise IdentifierError("a CCCD / personal ID number (số định danh cá nhân) is exactly 12 digits")
    return number


def cccd_warnings(number: str, birth_date: str | None, gender: str | None) -> list[Warning]:
    """Structure (birth-registration province, century+sex digit, birth year) against the patient.

    There is no check digit (none is defined in law); these are warnings only.
    """
    out: list[Warning] = []
    prefix, digit, year2 = number[:3], int(number[3]), number[4:6]
    if prefix not in codetables.provinces_pre2025():
        out.append(Warning("cccd-prefix", "the first 3 digits are not a known birth-registration province code (a country code for births abroad is possible)"))
    if gender in ("male", "female") and (digit % 2 == 0) != (gender == "male"):
        out.append(Warning("cccd-sex", "digit 4 of the CCCD encodes a different sex than the patient's gender"))
    if birth_date and len(birth_date) >= 4 and birth_date[:4].isdigit():
        year = int(birth_date[:4])
        if 1900 + 100 * (digit // 2) != year // 100 * 100:
            out.append(Warning("cccd-century", "digit 4 of the CCCD encodes a different century of birth than the birth date"))
        if year2 != f"{year % 100:02d}":
            out.append(Warning("cccd-birth-year", "digits 5-6 of the CCCD differ from the year of the birth date"))
    return out


# --- old identity cards (CMND) ------------------------------------------------------------------


def check_cmnd(value: str) -> str:
    number = compact(value)
    if not (_NINE.match(number) or _TWELVE.match(number)):
        raise IdentifierError("an old identity card number (CMND) has 9 or 12 digits")
    return number


# --- health insurance -------------------------------------------------------------------------


@dataclass(frozen=True)
class BhytCard:
    form: str  # "legacy15", "bhxh10" or "cccd12"
    number: str
    group: str | None = None  # beneficiary group (mã đối tượng), legacy cards only
    benefit_level: str | None = None  # mức hưởng 1-5, legacy cards only
    province: str | None = None
    bhxh: str | None = None  # the 10-digit social-insurance number


def parse_bhyt(value: str) -> BhytCard:
    """A BHYT card code in one of its three accepted forms (domain brief 2.1, NĐ 188/2025 Art. 37)."""
    code = compact(value).upper()
    if m := _BHYT15.match(code):
        group, level, province, bhxh = m.groups()
        if level not in "12345":
            raise IdentifierError("the benefit-level digit (3rd character) of a BHYT card is 1-5")
        if province == "00":
            raise IdentifierError("characters 4-5 of a BHYT card are a province code (01-99)")
        return BhytCard("legacy15", code, group, level, province, bhxh)
    if _TEN.match(code):
        return BhytCard("bhxh10", code, bhxh=code)
    if _TWELVE.match(code):
        return BhytCard("cccd12", code)
    raise IdentifierError(
        "a BHYT number is a 15-character card code (2 letters + 13 digits), a 10-digit social-insurance number, or a 12-digit CCCD"
    )


def bhyt_warnings(card: BhytCard) -> list[Warning]:
    if card.group and card.group not in KNOWN_BHYT_GROUPS:
        return [Warning("bhyt-group", "the beneficiary group (first 2 letters) is not in the known list")]
    return []


def check_bhxh(value: str) -> str:
    number = compact(value)
    if not _TEN.match(number):
        raise IdentifierError("a social-insurance number (mã số BHXH) is exactly 10 digits")
    return number


# --- facilities ---------------------------------------------------------------------------------


def check_facility(value: str) -> str:
    code = compact(value)
    if not _FIVE.match(code):
        raise IdentifierError("a facility code (mã cơ sở khám chữa bệnh) is exactly 5 digits")
    return code


def facility_warnings(code: str) -> list[Warning]:
    old_codes = {p.code for p in codetables.provinces_pre2025().values()}
    if code[:2] not in old_codes | FACILITY_SPECIAL:
        return [Warning("facility-province", "the first 2 digits of the facility code are not a known province code")]
    return []


# --- temporary ids (newborns, unidentified patients) ---------------------------------------------


def new_temporary_id(today: date | None = None) -> str:
    """TMP-YYYYMMDD-XXXXXX: letters and dashes, so it can never be mistaken for a CCCD."""
    day = (today or date.today()).strftime("%Y%m%d")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return f"TMP-{day}-" + "".join(secrets.choice(alphabet) for _ in range(6))


def check_temporary(value: str) -> str:
    code = value.strip().upper()
    if _TWELVE.match(compact(code)) or not _TEMPORARY.match(code):
        raise IdentifierError("a temporary id looks like TMP-YYYYMMDD-XXXXXX and can never be 12 digits")
    return code


# --- names ---------------------------------------------------------------------------------------

COMPOUND_FAMILY_NAMES = ("Công Tằng Tôn Nữ", "Tôn Thất", "Tôn Nữ", "Âu Dương", "Nguyễn Phúc")


def split_name(full: str) -> tuple[str, str, list[str]]:
    """(text, family, given) of a Vietnamese full name: order Họ - tên đệm - tên.

    The text is kept exactly as written (NFC, single spaces); family is the first word, or a known
    compound family name; given is the rest. Best effort: the text is authoritative.
    """
    text = " ".join(unicodedata.normalize("NFC", full).split())
    for compound in COMPOUND_FAMILY_NAMES:
        if text.startswith(compound + " "):
            return text, compound, text[len(compound) + 1 :].split()
    words = text.split()
    return text, words[0] if words else "", words[1:]
