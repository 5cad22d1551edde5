"""No national ID or name reaches a log line: register, search, fail, all captured."""

from __future__ import annotations

import logging

from fhir_helpers import FHIR_JSON, post

CCCD = "001199012345"
NAME = "Hoàng Thị Lộlog"


def test_logs_carry_no_personal_data(client, caplog):
    with caplog.at_level(logging.DEBUG):
        created = post(client, {"resourceType": "Patient", "name": [{"text": NAME}], "identifier": [{"system": "urn:x", "value": CCCD}]})
        assert created.status_code == 201
        client.get(f"/fhir/Patient?identifier={CCCD}")
        client.post("/fhir/Patient/_search", data={"identifier": CCCD})
        post(client, {"resourceType": "Patient", "name": [{"text": NAME}], "birthDate": CCCD})  # 400
        client.post("/fhir/Patient", data=f'{{"resourceType": "Patient", "name": "{NAME}" ', headers=FHIR_JSON)  # bad JSON
        client.get(f"/fhir/Patient/{CCCD}x!")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "/fhir/<rtype>" in text  # requests were logged, by route rule
    assert CCCD not in text and NAME not in text and "Lộlog" not in text


def test_redaction_filter_masks_identifiers():
    from ehr.logging import redact

    assert CCCD not in redact(f"lookup {CCCD} failed")
    assert "DN4010123456789" not in redact("card DN4010123456789")
