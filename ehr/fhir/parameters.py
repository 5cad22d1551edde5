"""Reading and writing Parameters resources (operation inputs and outputs)."""

from __future__ import annotations

from typing import Any

from ehr.fhir.outcomes import bad_request
from ehr.fhir.validation import validate_resource


def parse(doc: Any) -> dict[str, list[dict[str, Any]]]:
    """Validate a Parameters resource; return its parameters by name."""
    if not isinstance(doc, dict) or doc.get("resourceType") != "Parameters":
        raise bad_request("the operation takes a Parameters resource", "Parameters")
    validate_resource(doc)
    out: dict[str, list[dict[str, Any]]] = {}
    for param in doc.get("parameter") or ():
        out.setdefault(param["name"], []).append(param)
    return out


def value(params: dict[str, list[dict[str, Any]]], name: str, kind: str) -> Any:
    """The value[x] of kind `kind` (e.g. 'Boolean', 'Reference') of the single parameter `name`."""
    found = params.get(name) or []
    if len(found) > 1:
        raise bad_request(f"parameter '{name}' may appear once", f"Parameters.parameter:{name}")
    if not found:
        return None
    item = found[0]
    if kind == "resource":
        return item.get("resource")
    return item.get(f"value{kind}")


def build(*parts: tuple[str, str, Any]) -> dict[str, Any]:
    """Parameters from (name, kind, value) with kind 'resource' or a value[x] suffix."""
    params = []
    for name, kind, val in parts:
        if val is None:
            continue
        params.append({"name": name, "resource": val} if kind == "resource" else {"name": name, f"value{kind}": val})
    return {"resourceType": "Parameters", "parameter": params}
