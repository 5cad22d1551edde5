"""EHR_IDENTIFIER_BASE: a deployment that sets another base publishes and enforces its systems under it."""

from __future__ import annotations

import json

import pytest

from ehr import create_app
from ehr.identity.systems import DEFAULT_BASE, IdentifierSystems
from fhir_helpers import FHIR_JSON, body, post

BASE = "https://moh.gov.vn/fhir/sid"
OURS = IdentifierSystems(BASE)


@pytest.fixture
def other_base(app, app_config):
    """The same database and keys, another identifier base (`app` empties the tables afterwards)."""
    application = create_app({**app_config, "EHR_IDENTIFIER_BASE": BASE})
    yield application
    application.extensions["ehr.store"].engine.dispose()


def test_naming_systems_and_rules_follow_the_configured_base(other_base):
    result = other_base.test_cli_runner().invoke(args=["ehr", "conformance", "sync"])
    assert result.exit_code == 0, result.output
    web = other_base.test_client()
    doc = body(web.get("/fhir/NamingSystem?_count=50"))
    uris = {u["value"] for e in doc["entry"] for u in e["resource"]["uniqueId"] if u["type"] == "uri"}
    assert {OURS.cccd, OURS.cmnd, OURS.bhyt, OURS.bhxh, OURS.facility, OURS.temporary} <= uris
    assert not any(u.startswith(DEFAULT_BASE) for u in uris)
    # The rules are bound to the configured systems: 12 digits under the new CCCD system.
    short = {"resourceType": "Patient", "identifier": [{"system": OURS.cccd, "value": "07909000011"}]}
    assert post(web, short).status_code == 422
    payload = "001090012345|123456789|Nguyễn Văn An|14051990|Nam|Phường Bến Thành, Thành phố Hồ Chí Minh|01072021"
    qr = {"resourceType": "Parameters", "parameter": [{"name": "payload", "valueString": payload}]}
    draft = body(web.post("/fhir/Patient/$from-cccd-qr", data=json.dumps(qr), headers=FHIR_JSON))
    assert {i["system"] for i in draft["identifier"]} == {OURS.cccd, OURS.cmnd}
