"""FHIR JSON in and out.

Parsing keeps decimals exact (`Decimal`, so `0.010` stays `0.010` as FHIR requires), refuses
duplicate keys, NaN/Infinity, a byte-order mark, invalid UTF-8 and documents nested deeper than
MAX_JSON_DEPTH. Output is canonical JSON: UTF-8, sorted keys, no insignificant whitespace; it is
what the store encrypts and what signatures cover.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import simplejson

from ehr.fhir.outcomes import bad_request


# Every later step (JSON Patch's deepcopy, the shape walk, pydantic, the encoder) recurses once or
# more per level, so a deep document that the parser accepted became a RecursionError (500) there.
# A resource the shape rules accept has at most 64 element levels, each one object and one array:
# 160 is above anything valid and far below the interpreter's recursion limit.
MAX_JSON_DEPTH = 160


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Duplicate("duplicate property name in a JSON object")
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number in FHIR")


def _too_deep(doc: Any, limit: int) -> bool:
    """True when `doc` nests objects/arrays deeper than `limit` (iterative: no recursion to overflow)."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def parse_json(body: bytes | str) -> Any:
    """Parse a JSON document strictly; raise a 400 FhirError on any syntax problem."""
    if isinstance(body, bytes):
        if body.startswith(b"\xef\xbb\xbf"):
            raise bad_request("the body starts with a byte-order mark; FHIR JSON must not")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise bad_request("the body is not valid UTF-8") from None
    else:
        text = body
    if not text.strip():
        raise bad_request("the body is empty")
    try:
        doc = json.loads(
            text, parse_float=Decimal, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant
        )
    except _Duplicate:
        raise bad_request("the JSON has a duplicate property name in one object") from None
    except json.JSONDecodeError as exc:
        # Position only; the message of JSONDecodeError never quotes the document itself.
        raise bad_request(f"the body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise bad_request("the JSON is nested too deeply") from None
    except ValueError:
        # int() refuses numbers of more than 4300 digits; NaN/Infinity land here too.
        raise bad_request("the JSON contains a number that is not acceptable") from None
    if isinstance(doc, (dict, list)) and _too_deep(doc, MAX_JSON_DEPTH):
        raise bad_request(f"the JSON is nested too deeply (more than {MAX_JSON_DEPTH} levels)")
    return doc


def parse_resource(body: bytes | str) -> dict[str, Any]:
    doc = parse_json(body)
    if not isinstance(doc, dict):
        raise bad_request("the body must be a JSON object holding a FHIR resource")
    rtype = doc.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        raise bad_request("resourceType is missing", "resourceType", code="required")
    return doc


def canonical(obj: Any) -> bytes:
    """Canonical UTF-8 JSON bytes; raises 400 for strings that cannot be UTF-8 (lone surrogates)."""
    text = simplejson.dumps(obj, use_decimal=True, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request("a string contains an invalid Unicode code point (lone surrogate)") from None


def dumps(obj: Any) -> bytes:
    """JSON bytes for responses (same encoder as `canonical`, so decimals survive)."""
    return canonical(obj)


def loads_stored(data: bytes) -> dict[str, Any]:
    """Parse JSON the store wrote itself (already validated; decimals kept)."""
    return json.loads(data, parse_float=Decimal)
