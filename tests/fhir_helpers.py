"""Small helpers for FHIR API tests."""

from __future__ import annotations

import json
from decimal import Decimal

import simplejson
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def body(response: TestResponse) -> Any:
    return json.loads(response.data, parse_float=Decimal)


def dumps(resource: Any) -> str:
    return str(simplejson.dumps(resource, use_decimal=True))


def post(client: FlaskClient, resource: dict[str, Any], **headers: str) -> TestResponse:
    return client.post(f"/fhir/{resource['resourceType']}", data=dumps(resource), headers={**FHIR_JSON, **headers})


def put(client: FlaskClient, resource: dict[str, Any], **headers: str) -> TestResponse:
    path = f"/fhir/{resource['resourceType']}/{resource['id']}"
    return client.put(path, data=dumps(resource), headers={**FHIR_JSON, **headers})


def created_id(response: TestResponse) -> str:
    assert response.status_code == 201, response.data
    return str(body(response)["id"])


def patient(name: str = "Nguyễn Văn An", **extra: Any) -> dict[str, Any]:
    family, *given = name.split()
    return {"resourceType": "Patient", "name": [{"text": name, "family": family, "given": given}], **extra}


def outcome_codes(response: TestResponse) -> list[str]:
    doc = body(response)
    assert doc["resourceType"] == "OperationOutcome", doc
    return [issue["code"] for issue in doc["issue"]]


def outcome_expressions(response: TestResponse) -> list[str]:
    return [e for issue in body(response)["issue"] for e in issue.get("expression", [])]
