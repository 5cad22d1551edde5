"""`_summary` and `_elements` (R4 search.html#summary, #elements): top-level element subsets.

Summary elements come from the model metadata (`summary_element_property`); mandatory top-level
elements are always kept, and a subsetted resource is tagged SUBSETTED as the specification asks.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ehr.fhir.resources import summary_and_required

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
_ALWAYS = {"resourceType", "id", "meta"}


@lru_cache(maxsize=None)
def _elements(resource_type: str) -> tuple[frozenset[str], frozenset[str]]:
    summary, required = summary_and_required(resource_type)
    return frozenset(summary), frozenset(required)


def _tag(doc: dict[str, Any]) -> dict[str, Any]:
    meta = dict(doc.get("meta") or {})
    meta["tag"] = [*(meta.get("tag") or []), SUBSETTED]
    doc["meta"] = meta
    return doc


def _keep(doc: dict[str, Any], names: set[str]) -> dict[str, Any]:
    """Keep the named elements (with their `_name` primitive extensions)."""
    return {k: v for k, v in doc.items() if k in names or (k.startswith("_") and k[1:] in names)}


def apply_summary(doc: dict[str, Any], mode: str) -> dict[str, Any]:
    if mode in ("false", "count"):
        return doc
    summary, required = _elements(doc["resourceType"])
    if mode == "true":
        return _tag(_keep(doc, set(summary | required | _ALWAYS)))
    if mode == "text":
        return _tag(_keep(doc, set(required | _ALWAYS | {"text"})))
    if mode == "data":
        return _tag({k: v for k, v in doc.items() if k != "text"})
    raise ValueError(mode)


def apply_elements(doc: dict[str, Any], elements: list[str]) -> dict[str, Any]:
    _, required = _elements(doc["resourceType"])
    return _tag(_keep(doc, set(elements) | set(required) | _ALWAYS))
