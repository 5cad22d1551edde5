"""Maximum lengths of the free text people type, by FHIR element: one table for the API and the forms.

FHIR itself only bounds a `string` at 1 MB. A name, an address line or a drug name that long is a
mistake (a paste gone wrong, a script): it breaks printed documents (the emergency card of a
5,000-character drug name is three pages) and every screen that shows it. The limits below are
generous for real data (the FHIR R4 examples and Synthea's records pass, `tests/fhir`) and are
applied on every write (`ehr.fhir.validation.validate_resource`: POST, PUT, PATCH, transaction and
batch entries, `$validate`) and by the clinic forms (`ehr.clinic.forms`), so both say the same.

How a limit is found for an element (`limit_for`): the element's path in its resource
(`MedicationRequest.medicationCodeableConcept.text`) in `BY_PATH`; else its datatype's element
(`CodeableConcept.text`) in `BY_TYPE`; else `NARRATIVE` for narrative XHTML and `DEFAULT` for any
other `string` or `markdown`. Codes, URIs, ids, dates and base64 are not free text and are not
counted here (their formats bound them). Lengths are counted in characters (code points), as the
forms count them.
"""

from __future__ import annotations

import re
import typing
from functools import lru_cache
from typing import Any, NamedTuple

from fhir.resources.R4B import get_fhir_model_class

from ehr.fhir.resources import KIND_EXT, KIND_OBJECT, KIND_RESOURCE, element_table

DEFAULT = 10_000  # any other string or markdown: a long comment or description still fits
NARRATIVE = 1_000_000  # Narrative.div: generated; the R4 ValueSet narratives reach 870,000 characters
DOCUMENT = 100_000  # a section of a clinical document (Composition.section.text.div): a long discharge letter

# Elements of datatypes, wherever the datatype is used.
BY_TYPE: dict[str, int] = {
    "HumanName.family": 100,
    "HumanName.given": 100,
    "HumanName.prefix": 100,
    "HumanName.suffix": 100,
    "HumanName.text": 200,  # the whole name: prefix, family, middle and given names together
    "Address.line": 200,
    "Address.city": 100,
    "Address.district": 100,
    "Address.state": 100,
    "Address.country": 100,
    "Address.postalCode": 20,
    "Address.text": 500,  # the whole address, all lines
    "ContactPoint.value": 256,  # an e-mail address may have 254 characters (RFC 5321)
    "CodeableConcept.text": 500,
    "Coding.display": 500,  # the longest displays of SNOMED CT, LOINC and ICD-10 are about 250
    "Dosage.text": 500,
    "Dosage.patientInstruction": 500,
    "Quantity.unit": 100,
    "Annotation.text": 5_000,  # a clinical note typed in one sitting
    "Narrative.div": NARRATIVE,
}

# Elements of resources: these win over the datatype's limit.
_DRUG = 200  # a drug name with strength and form; printed on one line of prescriptions and the emergency card
BY_PATH: dict[str, int] = {
    "Medication.code.text": _DRUG,
    "MedicationRequest.medicationCodeableConcept.text": _DRUG,
    "MedicationStatement.medicationCodeableConcept.text": _DRUG,
    "MedicationAdministration.medicationCodeableConcept.text": _DRUG,
    "MedicationDispense.medicationCodeableConcept.text": _DRUG,
    "AllergyIntolerance.code.text": 200,  # the substance, as shown on the allergy banner and emergency card
    "Condition.code.text": 500,
    "Encounter.reasonCode.text": 500,
    "Composition.section.text.div": DOCUMENT,
    "Immunization.lotNumber": 100,
    "Observation.valueString": 2_000,
    "Observation.component.valueString": 2_000,
}

_SHORTEST = min([*BY_TYPE.values(), *BY_PATH.values(), DEFAULT])
_TEXT_TYPES = {"String": "string", "Markdown": "markdown", "Xhtml": "xhtml"}
_INDEX = re.compile(r"\[\d+\]")
_REPEATED = re.compile(r"(\.[A-Za-z]+)\1+(?=\.|$)")  # section.section... (nested sections, items) is one path


class TooLong(NamedTuple):
    expression: str  # FHIRPath of the element, e.g. Patient.name[0].family
    limit: int
    actual: int


def _model_class(model_key: str) -> Any:
    if "." in model_key:
        module_name, cls_name = model_key.rsplit(".", 1)
        return getattr(__import__(module_name, fromlist=[cls_name]), cls_name)
    return get_fhir_model_class(model_key)


def _text_type(annotation: Any) -> str | None:
    """'string', 'markdown' or 'xhtml' for a (list of) text primitive, else None."""
    for arg in [annotation, *_nested_args(annotation)]:
        if typing.get_origin(arg) is typing.Annotated:
            for meta in typing.get_args(arg)[1:]:
                found = _TEXT_TYPES.get(type(meta).__name__)
                if found:
                    return found
            return None
    return None


def _nested_args(annotation: Any) -> list[Any]:
    out, todo = [], list(typing.get_args(annotation))
    while todo:
        arg = todo.pop()
        if typing.get_origin(arg) is typing.Annotated:
            out.append(arg)
        else:
            todo.extend(typing.get_args(arg))
    return out


@lru_cache(maxsize=None)
def _elements(model_key: str) -> tuple[str, dict[str, tuple[str, str | None]]]:
    """(datatype name, {json name: ('text', type) | ('object', child key) | ('resource', None)})."""
    cls = _model_class(model_key)
    texts = {info.alias or name: _text_type(info.annotation) for name, info in cls.model_fields.items()}
    out: dict[str, tuple[str, str | None]] = {}
    for key, element in element_table(model_key).items():
        if texts.get(key):
            out[key] = ("text", texts[key])
        elif element.kind == KIND_OBJECT and element.child:
            out[key] = ("object", element.child)
        elif element.kind == KIND_EXT:
            out[key] = ("object", "fhir.resources.R4B.fhirprimitiveextension.FHIRPrimitiveExtension")
        elif element.kind == KIND_RESOURCE:
            out[key] = ("resource", None)
    return cls.__name__, out


@lru_cache(maxsize=4096)
def _limit(resource_path: str, datatype: str, key: str, text_type: str) -> int:
    resource_path = _REPEATED.sub(r"\1", resource_path)
    if resource_path in BY_PATH:
        return BY_PATH[resource_path]
    found = BY_TYPE.get(f"{datatype}.{key}")
    if found is not None:
        return found
    return NARRATIVE if text_type == "xhtml" else DEFAULT


def limit_for(resource_type: str, path: str) -> int:
    """The maximum length of the element `path` ("name.family", "Patient.name[0].family") of
    `resource_type` (a resource type, or a datatype such as "Annotation"). ValueError when the
    element does not exist or is not free text (a code, a date, an object)."""
    path = _INDEX.sub("", path)
    if path.startswith(resource_type + "."):
        path = path[len(resource_type) + 1 :]
    model_key, datatype, kind, text_type = resource_type, resource_type, "object", None
    keys = path.split(".")
    for key in keys:
        if kind != "object":
            raise ValueError(f"{resource_type}.{path}: {key} is inside a primitive")
        datatype, table = _elements(model_key)
        if key not in table:
            known = key in element_table(model_key)
            raise ValueError(f"{resource_type}.{path}: " + (f"{key} is not free text" if known else f"no element {key}"))
        kind, target = table[key]
        if kind == "object":
            model_key = target or ""
        elif kind == "text":
            text_type = target
        else:
            raise ValueError(f"{resource_type}.{path}: {key} is a resource")
    if kind != "text" or text_type is None:
        raise ValueError(f"{resource_type}.{path} is not a free-text element")
    return _limit(f"{resource_type}.{path}", datatype, keys[-1], text_type)


def check(resource: dict[str, Any]) -> list[TooLong]:
    """Every free-text element of the resource (contained and bundled resources too) longer than
    its limit, with its FHIRPath (`Patient.name[0].family`), the limit and its length."""
    out: list[TooLong] = []
    rtype = resource.get("resourceType")
    if isinstance(rtype, str):
        _walk_resource(resource, rtype, out, 0)
    return out


def _walk_resource(resource: dict[str, Any], expression: str, out: list[TooLong], depth: int) -> None:
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or depth > 64:
        return
    try:
        _elements(rtype)
    except (KeyError, LookupError, ValueError, AttributeError, ImportError):
        return  # not a type of the models: reported by the FHIR validation
    _walk(resource, rtype, rtype, expression, out, depth)


def _walk(obj: dict[str, Any], model_key: str, resource_path: str, expression: str, out: list[TooLong], depth: int) -> None:
    if depth > 64:
        return
    datatype, table = _elements(model_key)
    for key, value in obj.items():
        spec = table.get(key)
        if spec is None:
            continue
        kind, target = spec
        items = value if isinstance(value, list) else [value]
        listed = isinstance(value, list)
        for i, item in enumerate(items):
            where = f"{expression}.{key}[{i}]" if listed else f"{expression}.{key}"
            if kind == "text":
                if isinstance(item, str) and len(item) > _SHORTEST:
                    limit = _limit(f"{resource_path}.{key}", datatype, key, target or "string")
                    if len(item) > limit:
                        out.append(TooLong(where, limit, len(item)))
            elif kind == "object" and isinstance(item, dict) and target:
                _walk(item, target, f"{resource_path}.{key}", where, out, depth + 1)
            elif kind == "resource" and isinstance(item, dict):
                _walk_resource(item, where, out, depth + 1)
