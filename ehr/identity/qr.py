"""The QR code on the back of a chip-based CCCD, as a draft Patient.

Payload layout (as decoded by public readers; no official specification is published):
seven fields separated by `|`:

    số CCCD | số CMND cũ (may be empty) | họ và tên | ngày sinh ddmmyyyy | giới tính | nơi thường trú | ngày cấp ddmmyyyy

Sources: github.com/dangbaokhoa/identity-card README ("Số CCCD, Số CMND cũ, Họ tên, Ngày sinh, Giới
tính, Địa chỉ thường trú, Ngày cấp"); the 7-field example `001090123456|012345678|NGUYEN VAN
A|01011990|Nam|...|15042021` in public parsers; github.com/phalconsupply/phongkham
docs/QR_SCANNER.md documents the dates as DDMMYYYY and the sex as Nam/Nữ. NĐ 70/2024 Art. 12(1)
says the QR carries the old CMND number, which is kept as a secondary identifier.
Tests use synthetic payloads only.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any

from ehr.identity import rules
from ehr.identity.systems import IdentifierSystems

FIELDS = 7
_SEX = {"nam": "male", "nu": "female", "nữ": "female"}


class QrError(ValueError):
    """The payload is not a CCCD QR payload; the message says which field and why (no values)."""


@dataclass(frozen=True)
class CccdQr:
    cccd: str
    old_id: str | None
    full_name: str
    birth_date: date
    gender: str
    address: str
    issue_date: date | None


def _date(text: str, field: str) -> date:
    if len(text) != 8 or not text.isdigit():
        raise QrError(f"field {field} must be a date written ddmmyyyy")
    try:
        return date(int(text[4:]), int(text[2:4]), int(text[:2]))
    except ValueError:
        raise QrError(f"field {field} is not a real calendar date") from None


def parse(payload: str) -> CccdQr:
    text = unicodedata.normalize("NFC", payload).strip().strip("\r\n")
    if not text:
        raise QrError("the QR payload is empty")
    parts = [p.strip() for p in text.split("|")]
    if len(parts) == FIELDS + 1 and parts[-1] == "":
        parts = parts[:-1]  # some scanners append a separator
    if len(parts) != FIELDS:
        raise QrError(f"a CCCD QR payload has {FIELDS} fields separated by '|', this one has {len(parts)}")
    number, old, name, born, sex, address, issued = parts
    try:
        cccd = rules.check_cccd(number)
    except rules.IdentifierError:
        raise QrError("field 1 (số CCCD) must be 12 digits") from None
    old_id = None
    if old:
        try:
            old_id = rules.check_cmnd(old)
        except rules.IdentifierError:
            raise QrError("field 2 (số CMND cũ) must be empty, 9 digits or 12 digits") from None
    if not name or any(ch.isdigit() for ch in name):
        raise QrError("field 3 (họ và tên) must be a name")
    gender = _SEX.get(sex.casefold())
    if gender is None:
        raise QrError("field 5 (giới tính) must be Nam or Nữ")
    if not address:
        raise QrError("field 6 (nơi thường trú) is empty")
    return CccdQr(cccd, old_id, name, _date(born, "4 (ngày sinh)"), gender, address, _date(issued, "7 (ngày cấp)") if issued else None)


def draft_patient(qr: CccdQr, systems: IdentifierSystems) -> dict[str, Any]:
    """A Patient (not stored) prefilled from the card; the old CMND is a secondary identifier."""
    text, family, given = rules.split_name(qr.full_name)
    identifier: dict[str, Any] = {"use": "official", "system": systems.cccd, "value": qr.cccd}
    if qr.issue_date:
        identifier["period"] = {"start": qr.issue_date.isoformat()}
    identifiers = [identifier]
    if qr.old_id:
        identifiers.append({"use": "old", "system": systems.cmnd, "value": qr.old_id})
    name: dict[str, Any] = {"use": "official", "text": text, "family": family}
    if given:
        name["given"] = given
    return {
        "resourceType": "Patient",
        "identifier": identifiers,
        "active": True,
        "name": [name],
        "gender": qr.gender,
        "birthDate": qr.birth_date.isoformat(),
        "address": [{"use": "home", "text": " ".join(qr.address.split()), "country": "VN"}],
    }
