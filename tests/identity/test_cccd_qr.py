"""The chip-card QR parser on well-formed and malformed synthetic payloads."""

from __future__ import annotations

import pytest

from ehr.identity import qr
from ehr.identity.systems import IdentifierSystems

GOOD = "001090012345|123456789|Nguyễn Văn An|14051990|Nam|Số 5 Lê Lợi, Phường Bến Thành, Thành phố Hồ Chí Minh|01072021"


def test_well_formed_payload_gives_a_draft_patient():
    parsed = qr.parse(GOOD)
    assert (parsed.cccd, parsed.old_id, parsed.gender, parsed.birth_date.isoformat()) == ("001090012345", "123456789", "male", "1990-05-14")
    patient = qr.draft_patient(parsed, IdentifierSystems())
    assert patient["identifier"][0] == {"use": "official", "system": IdentifierSystems().cccd, "value": "001090012345", "period": {"start": "2021-07-01"}}
    assert patient["identifier"][1] == {"use": "old", "system": IdentifierSystems().cmnd, "value": "123456789"}
    assert patient["name"][0] == {"use": "official", "text": "Nguyễn Văn An", "family": "Nguyễn", "given": ["Văn", "An"]}
    assert patient["birthDate"] == "1990-05-14" and patient["gender"] == "male"


@pytest.mark.parametrize(
    "payload",
    [
        "001090012345||Trần Thị Bé|01012000|Nữ|Xã Tân Phú, Tỉnh Đồng Nai|02022022",  # no old CMND
        "001090012345|001090012344|TRẦN THỊ BÉ|01012000|NỮ|Xã Tân Phú|02022022|",  # 12-digit old id, trailing '|'
        "001090012345||Tran Thi Be|01012000|nu|Xa Tan Phu|\r\n",  # no issue date, no accents
    ],
)
def test_tolerated_variants(payload):
    assert qr.parse(payload).gender == "female"


@pytest.mark.parametrize(
    "payload,message",
    [
        ("", "empty"),
        ("001090012345|123456789|Nguyễn Văn An|14051990|Nam|Hà Nội", "7 fields"),
        ("00109001234|123456789|Nguyễn Văn An|14051990|Nam|Hà Nội|01072021", "field 1"),
        ("001090012345|12345678|Nguyễn Văn An|14051990|Nam|Hà Nội|01072021", "field 2"),
        ("001090012345|123456789|123|14051990|Nam|Hà Nội|01072021", "field 3"),
        ("001090012345|123456789|Nguyễn Văn An|1990-05-14|Nam|Hà Nội|01072021", "field 4"),
        ("001090012345|123456789|Nguyễn Văn An|31021990|Nam|Hà Nội|01072021", "field 4"),
        ("001090012345|123456789|Nguyễn Văn An|14051990|Male|Hà Nội|01072021", "field 5"),
        ("001090012345|123456789|Nguyễn Văn An|14051990|Nam||01072021", "field 6"),
        ("001090012345|123456789|Nguyễn Văn An|14051990|Nam|Hà Nội|1/7/2021", "field 7"),
    ],
)
def test_malformed_payloads_name_the_field_not_the_value(payload, message):
    with pytest.raises(qr.QrError) as caught:
        qr.parse(payload)
    assert message in str(caught.value)
    assert "001090012345" not in str(caught.value) and "Nguyễn" not in str(caught.value)
