"""No national ID or name reaches a log line: register, search, fail, all captured."""

from __future__ import annotations

import json
import logging

from ehr.identity.systems import IdentifierSystems
from fhir_helpers import FHIR_JSON, post

CCCD = "001199012345"
NAME = "Hoàng Thị Lộlog"
SYSTEM = IdentifierSystems().cccd


def test_logs_carry_no_personal_data(client, caplog):
    with caplog.at_level(logging.DEBUG):
        created = post(client, {"resourceType": "Patient", "name": [{"text": NAME}], "identifier": [{"system": "urn:x", "value": CCCD}]})
        assert created.status_code == 201
        client.get(f"/fhir/Patient?identifier={CCCD}")
        client.post("/fhir/Patient/_search", data={"identifier": CCCD})
        post(client, {"resourceType": "Patient", "name": [{"text": NAME}], "birthDate": CCCD})  # 400
        client.post("/fhir/Patient", data=f'{{"resourceType": "Patient", "name": "{NAME}" ', headers=FHIR_JSON)  # bad JSON
        client.get(f"/fhir/Patient/{CCCD}x!")
        # identity paths: national-ID rules, duplicates, QR, $match
        post(client, {"resourceType": "Patient", "name": [{"text": NAME}], "identifier": [{"system": SYSTEM, "value": CCCD}]})
        post(client, {"resourceType": "Patient", "name": [{"text": NAME}], "identifier": [{"system": SYSTEM, "value": CCCD}]})  # 409
        post(client, {"resourceType": "Patient", "identifier": [{"system": SYSTEM, "value": CCCD[:-1]}]})  # 422
        payload = f"{CCCD}||{NAME}|01011999|Nữ|Hà Nội|01012020"
        client.post("/fhir/Patient/$from-cccd-qr", data=payload.encode(), headers={"Content-Type": "text/plain"})
        client.post("/fhir/Patient/$from-cccd-qr", data=payload.replace("01011999", "99").encode(), headers={"Content-Type": "text/plain"})
        match = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {"resourceType": "Patient", "name": [{"text": NAME}],
                 "identifier": [{"system": SYSTEM, "value": CCCD}]}}]}
        client.post("/fhir/Patient/$match", data=json.dumps(match), headers=FHIR_JSON)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "/fhir/<rtype>" in text  # requests were logged, by route rule
    assert CCCD not in text and NAME not in text and "Lộlog" not in text


def test_redaction_filter_masks_identifiers():
    from ehr.logging import redact

    assert CCCD not in redact(f"lookup {CCCD} failed")
    assert "DN4010123456789" not in redact("card DN4010123456789")


def test_request_and_incident_ids_pass_the_redaction_intact():
    from ehr.logging import PhiRedactionFilter, request_id

    for rid in ["5f0a1234567890123456789abcdef012", "550e8400-e29b-41d4-a716-446655440000"]:  # digit runs inside
        record = logging.LogRecord("ehr.request", logging.INFO, __file__, 1, "GET %s rid=%s incident=%s", (f"/x/{CCCD}", rid, rid[:16]), None)
        PhiRedactionFilter().filter(record)
        assert record.getMessage() == f"GET /x/[redacted-number] rid={rid} incident={rid[:16]}"
        assert request_id(rid) == rid
    assert request_id(CCCD) != CCCD  # a bare ID-like number is not taken as a request id
