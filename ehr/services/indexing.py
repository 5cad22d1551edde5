"""Turn a validated resource into its search-index rows, as the declarations say.

Identifying values (mode `blind`) leave here only as HMAC tokens under a sub-key per
(resource type, parameter, kind); clinical codes, dates, quantities and references stay plain.
"""

from __future__ import annotations

import unicodedata
from decimal import Decimal
from typing import Any, Iterable, Iterator

from ehr.crypto.blind import fold_text, normalize_identifier
from ehr.fhir import dates
from ehr.fhir import references as refs
from ehr.fhir.searchparams import SearchParam, registry
from ehr.services import rules
from ehr.store.index import DateRow, IndexRows, NumberRow, RefRow, StringRow, TokenRow
from ehr.store.runtime import Store

MAX_PREFIX = 64  # longer search strings match on their first 64 folded characters
_NAME_PARTS = ("text", "family", "given", "prefix", "suffix")
_ADDRESS_PARTS = ("text", "line", "city", "district", "state", "postalCode", "country")


def purpose(resource_type: str, param: str, kind: str = "") -> str:
    return f"{resource_type}.{param}" + (f":{kind}" if kind else "")


def identifier_purpose(resource_type: str) -> str:
    return purpose(resource_type, "identifier")


def identifier_token(store: Store, resource_type: str, value: str) -> bytes:
    return store.blind.token(identifier_purpose(resource_type), normalize_identifier(value))


def blind_token(store: Store, resource_type: str, param: str, value: str) -> bytes:
    return store.blind.token(purpose(resource_type, param), normalize_identifier(value))


def string_hash(store: Store, resource_type: str, param: str, kind: str, text: str) -> bytes:
    return store.blind.token(purpose(resource_type, param, kind), text)


def exact_form(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


# --- value shapes -------------------------------------------------------------------------------


def _codings(value: Any, type_name: str) -> Iterator[tuple[str | None, str | None, str | None]]:
    """(system, code, display-or-text) of a token-able value."""
    if type_name == "CodeableConcept" and isinstance(value, dict):
        for coding in value.get("coding") or ():
            yield coding.get("system"), coding.get("code"), coding.get("display")
        if value.get("text"):
            yield None, None, value["text"]
    elif type_name == "Coding" and isinstance(value, dict):
        yield value.get("system"), value.get("code"), value.get("display")
    elif type_name in ("Identifier", "ContactPoint") and isinstance(value, dict):
        system = value.get("system") if type_name == "Identifier" else None
        yield system, value.get("value"), None
    elif isinstance(value, bool):
        yield None, "true" if value else "false", None
    elif isinstance(value, str):
        yield None, value, None


def strings_of(value: Any, type_name: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    parts = _NAME_PARTS if type_name == "HumanName" else _ADDRESS_PARTS if type_name == "Address" else ()
    out: list[str] = []
    for part in parts:
        item = value.get(part) if isinstance(value, dict) else None
        out += [v for v in (item if isinstance(item, list) else [item]) if isinstance(v, str)]
    return out


def date_range(value: Any, type_name: str) -> tuple[int, int] | None:
    try:
        if isinstance(value, str):
            return dates.value_range(value)
        if type_name == "Period" and isinstance(value, dict):
            return dates.period_range(value)
    except dates.DateFormatError:
        return None
    return None


def prefixes(folded: str) -> set[str]:
    head = folded[:MAX_PREFIX]
    return {head[:k] for k in range(1, len(head) + 1)}


# --- rows ---------------------------------------------------------------------------------------


def _token_rows(store: Store, rtype: str, p: SearchParam, values: list[tuple[Any, str]], out: IndexRows) -> None:
    for value, type_name in values:
        for system, code, text in _codings(value, type_name):
            if code:
                if p.blind:
                    out.tokens.append(TokenRow(p.code, system, None, blind_token(store, rtype, p.code, code)))
                else:
                    out.tokens.append(TokenRow(p.code, system, code, None))
            elif system and p.code == "identifier":
                out.tokens.append(TokenRow(p.code, system, None, None))  # supports `system|`
            if text and "text" in p.modifiers:
                for word in set(fold_text(text).split()):
                    out.strings.append(StringRow(p.code, "w", string_hash(store, rtype, p.code, "w", word)))
        if type_name == "Identifier" and isinstance(value, dict) and value.get("value"):
            hashed = blind_token(store, rtype, p.code, value["value"])
            for coding in (value.get("type") or {}).get("coding") or ():
                if coding.get("code"):
                    out.tokens.append(TokenRow(f"{p.code}:of-type", coding.get("system"), coding["code"], hashed))


def _string_rows(store: Store, rtype: str, p: SearchParam, values: list[tuple[Any, str]], out: IndexRows) -> None:
    folded_prefixes: set[str] = set()
    exacts: set[str] = set()
    for value, type_name in values:
        for text in strings_of(value, type_name):
            folded_prefixes |= prefixes(fold_text(text))
            exacts.add(exact_form(text))
    out.strings += [StringRow(p.code, "p", string_hash(store, rtype, p.code, "p", v)) for v in sorted(folded_prefixes) if v]
    out.strings += [StringRow(p.code, "e", string_hash(store, rtype, p.code, "e", v)) for v in sorted(exacts) if v]


def _date_rows(store: Store, rtype: str, p: SearchParam, values: list[tuple[Any, str]], out: IndexRows) -> None:
    for value, type_name in values:
        if p.mode == "blind-buckets":
            if isinstance(value, str):
                try:
                    buckets = dates.bucket_tokens(value)
                except dates.DateFormatError:
                    continue
                out.tokens += [TokenRow(p.code, None, None, store.blind.token(purpose(rtype, p.code), b)) for b in buckets]
            continue
        found = date_range(value, type_name)
        if found:
            out.dates.append(DateRow(p.code, *found))


def _number_rows(p: SearchParam, values: list[tuple[Any, str]], out: IndexRows) -> None:
    for value, type_name in values:
        if type_name == "Quantity" and isinstance(value, dict) and isinstance(value.get("value"), (int, Decimal)):
            out.numbers.append(NumberRow(p.code, float(value["value"]), value.get("system"), value.get("code"), value.get("unit")))
        elif isinstance(value, (int, Decimal)) and not isinstance(value, bool):
            out.numbers.append(NumberRow(p.code, float(value), None, None, None))


def _reference_rows(store: Store, p: SearchParam, values: list[tuple[Any, str]], out: IndexRows) -> None:
    for value, _ in values:
        ref = value.get("reference") if isinstance(value, dict) else None
        if isinstance(ref, str):
            parsed = refs.parse(ref, store.base_urls)
            if parsed.kind == "local" and parsed.resource_type and parsed.logical_id:
                out.refs.append(RefRow(p.code, parsed.resource_type, parsed.logical_id))


def rows_for(store: Store, resource_type: str, doc: dict[str, Any], local_refs: Iterable[tuple[str, str]]) -> IndexRows:
    out = IndexRows()
    for p in registry().for_type(resource_type):
        values = p.extract(doc)
        if not values:
            continue
        if p.type == "token":
            _token_rows(store, resource_type, p, values, out)
        elif p.type == "string":
            _string_rows(store, resource_type, p, values, out)
        elif p.type == "date":
            _date_rows(store, resource_type, p, values, out)
        elif p.type in ("quantity", "number"):
            _number_rows(p, values, out)
        elif p.type == "reference":
            _reference_rows(store, p, values, out)
    out.refs += [RefRow("_ref", t, i) for t, i in sorted(set(local_refs))]
    for number in rules.national_ids(doc, store.systems):
        out.tokens.append(TokenRow(NATIONAL_ID, None, None, national_id_token(store, number)))
    out.dedupe()
    return out


NATIONAL_ID = "_national-id"  # internal: one row per active CCCD of an active Patient


def national_id_token(store: Store, number: str) -> bytes:
    return store.blind.token(purpose("Patient", NATIONAL_ID), number)
