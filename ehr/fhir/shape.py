"""JSON-level rules of FHIR that the pydantic models do not enforce.

fhir.resources coerces `"true"` to a boolean and `"3"` or `3.0` to an integer, and accepts empty
arrays and nulls. FHIR JSON (json.html) forbids all of these: booleans are JSON booleans, integers
have no fraction, arrays and objects are never empty, null appears only inside primitive arrays
that have a `_name` partner, and strings are not empty. The walk also checks narrative XHTML and
collects every Reference with its path, so the store does one pass over the input.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ehr.fhir.narrative import NarrativeError, check_div
from ehr.fhir.outcomes import Issue
from ehr.fhir.resources import (
    KIND_BASE64,
    KIND_BOOL,
    KIND_DECIMAL,
    KIND_EXT,
    KIND_INT,
    KIND_OBJECT,
    KIND_RESOURCE,
    KIND_STR,
    R4B_TYPES,
    element_table,
    is_valid_id,
    narrative_model_key,
    reference_model_key,
)

MAX_DEPTH = 64
_REFERENCE = reference_model_key()
_NARRATIVE = narrative_model_key()
_ATTACHMENT = "fhir.resources.R4B.attachment.Attachment"
_ABSOLUTE = re.compile(r"^(urn:(uuid|oid):\S+|[A-Za-z][A-Za-z0-9+.-]*://\S+)$")
_PRIMITIVE = frozenset({KIND_BOOL, KIND_INT, KIND_DECIMAL, KIND_STR, KIND_BASE64})
_BASE64 = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")
_CONTROL = frozenset(chr(c) for c in range(32)) - {"\t", "\n", "\r"}


@dataclass
class WalkResult:
    issues: list[Issue] = field(default_factory=list)
    # (path, reference object): path like "Observation.subject" or "Observation.performer[1]"
    references: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


class _Walker:
    def __init__(self) -> None:
        self.result = WalkResult()

    def fail(self, path: str, message: str, code: str = "structure") -> None:
        if len(self.result.issues) < 50:
            self.result.issues.append(Issue(code, message, expression=(path,)))

    def resource(self, obj: Any, path: str, depth: int) -> None:
        if not isinstance(obj, dict):
            self.fail(path, "a resource must be a JSON object")
            return
        rtype = obj.get("resourceType")
        if not isinstance(rtype, str) or rtype not in R4B_TYPES:
            self.fail(path, "unknown or missing resourceType")
            return
        rid = obj.get("id")
        if rid is not None and not is_valid_id(rid):
            self.fail(f"{path}.id", "ids are 1-64 characters from A-Z, a-z, 0-9, '-' and '.'", "value")
        self.complex(obj, rtype, path, depth, is_resource=True)
        if rtype == "Bundle":
            self.bundle_rules(obj, path)

    def bundle_rules(self, bundle: dict[str, Any], path: str) -> None:
        entries = bundle.get("entry")
        if not isinstance(entries, list):
            return
        for i, entry in enumerate(entries):
            full_url = entry.get("fullUrl") if isinstance(entry, dict) else None
            if isinstance(full_url, str) and not _ABSOLUTE.match(full_url):
                self.fail(f"{path}.entry[{i}].fullUrl", "fullUrl must be an absolute URL or a urn:uuid/urn:oid", "value")

    def attachment_rules(self, obj: dict[str, Any], path: str) -> None:
        data, size = obj.get("data"), obj.get("size")
        if isinstance(data, str) and type(size) is int:
            try:
                actual = len(base64.b64decode(data, validate=True))
            except (binascii.Error, ValueError):
                return  # reported by the model validation
            if actual != size:
                self.fail(f"{path}.size", "size does not match the length of the decoded data", "value")

    def complex(self, obj: dict[str, Any], model_key: str, path: str, depth: int, is_resource: bool = False) -> None:
        if depth > MAX_DEPTH:
            self.fail(path, "the resource is nested too deeply")
            return
        if not obj:
            self.fail(path, "empty objects are not allowed in FHIR JSON")
            return
        table = element_table(model_key)
        if model_key == _REFERENCE:
            self.result.references.append((path, obj))
        elif model_key == _ATTACHMENT:
            self.attachment_rules(obj, path)
        for key, value in obj.items():
            if key == "resourceType" and is_resource:
                continue
            element = table.get(key)
            child_path = f"{path}.{key}"
            if element is None:
                self.fail(child_path, "unknown element")
                continue
            if element.is_list:
                if not isinstance(value, list):
                    self.fail(child_path, "this element must be a JSON array")
                    continue
                if not value:
                    self.fail(child_path, "empty arrays are not allowed in FHIR JSON")
                    continue
                nulls_ok = element.kind in _PRIMITIVE and ("_" + key) in obj or element.kind == KIND_EXT
                for i, item in enumerate(value):
                    if item is None:
                        if not nulls_ok:
                            self.fail(f"{child_path}[{i}]", "null is not allowed here")
                        continue
                    self.value(item, element.kind, element.child, f"{child_path}[{i}]", depth, model_key, key, element.codes)
            else:
                if isinstance(value, list):
                    self.fail(child_path, "this element must not be an array")
                    continue
                if value is None:
                    self.fail(child_path, "null is not allowed in FHIR JSON")
                    continue
                self.value(value, element.kind, element.child, child_path, depth, model_key, key, element.codes)

    def value(self, value: Any, kind: int, child: str | None, path: str, depth: int, parent: str, key: str,
              codes: frozenset[str] | None = None) -> None:
        if kind == KIND_STR:
            if not isinstance(value, str):
                self.fail(path, "this element must be a JSON string", "value")
            elif not value.strip():
                self.fail(path, "strings must not be empty or only whitespace", "value")
            elif not _CONTROL.isdisjoint(value):
                self.fail(path, "strings must not contain control characters", "value")
            elif codes is not None and value not in codes:
                # the value is not echoed: a code field may still carry personal text by mistake
                self.fail(path, "this code is not in the required value set (" + " | ".join(sorted(codes)[:12]) + ")", "code-invalid")
            elif parent == _NARRATIVE and key == "div":
                try:
                    check_div(value)
                except NarrativeError as exc:
                    self.fail(path, str(exc), "invariant")
        elif kind == KIND_BASE64:
            if not isinstance(value, str):
                self.fail(path, "this element must be a JSON string", "value")
            elif not _BASE64.match("".join(value.split())):
                self.fail(path, "this element must be valid base64", "value")
        elif kind == KIND_BOOL:
            if not isinstance(value, bool):
                self.fail(path, "this element must be a JSON boolean (true or false)", "value")
        elif kind == KIND_INT:
            if type(value) is not int:
                self.fail(path, "this element must be a JSON integer", "value")
        elif kind == KIND_DECIMAL:
            if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
                self.fail(path, "this element must be a JSON number", "value")
        elif kind == KIND_OBJECT:
            if not isinstance(value, dict):
                self.fail(path, "this element must be a JSON object")
            else:
                self.complex(value, child or "", path, depth + 1)
        elif kind == KIND_RESOURCE:
            self.resource(value, path, depth + 1)
        elif kind == KIND_EXT:
            if not isinstance(value, dict):
                self.fail(path, "this element must be a JSON object")
            elif not value:
                self.fail(path, "empty objects are not allowed in FHIR JSON")
            else:
                self.complex(value, "fhir.resources.R4B.fhirprimitiveextension.FHIRPrimitiveExtension", path, depth + 1)


def walk(doc: dict[str, Any]) -> WalkResult:
    """Check FHIR JSON rules over a whole resource and collect its references."""
    walker = _Walker()
    walker.resource(doc, doc.get("resourceType", "Resource") if isinstance(doc.get("resourceType"), str) else "Resource", 0)
    return walker.result
