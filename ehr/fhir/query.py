"""Parse a FHIR search query into clauses and result controls (R4 search.html).

Comma separates alternatives (OR), a repeated parameter adds a clause (AND); `\\,`, `\\|`, `\\$`
and `\\\\` escape. Chains (`subject:Patient.identifier=`, `patient.name=`) and reverse chains
(`_has:Observation:patient:code=`) nest clauses. This module only reads the syntax; which names,
modifiers and values are valid for a resource type is decided by the search service.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ehr.fhir.outcomes import bad_request

RESULT_PARAMS = {"_count", "_sort", "_include", "_revinclude", "_summary", "_elements", "_total", "_format", "_pretty", "_page"}
SUMMARY_VALUES = {"true", "false", "text", "data", "count"}
TOTAL_VALUES = {"none", "estimate", "accurate"}
MAX_COUNT = 1000
DEFAULT_COUNT = 50
MAX_CHAIN_DEPTH = 3
MAX_INCLUDE_PARAMS = 16  # each _include/_revinclude is one more fan-out query per level
MAX_CLAUSES = 64  # each clause is one more index join


@dataclass
class Clause:
    code: str
    modifier: str | None
    values: list[str]  # raw alternatives, escapes kept (the type parser splits on '|')
    chain: Clause | None = None
    has: HasClause | None = None
    raw_name: str = ""


@dataclass
class HasClause:
    source_type: str
    param: str
    inner: Clause


@dataclass(frozen=True)
class Include:
    source_type: str
    param: str
    target_type: str | None
    iterate: bool
    reverse: bool


@dataclass
class SearchQuery:
    clauses: list[Clause] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (param, descending)
    includes: list[Include] = field(default_factory=list)
    summary: str | None = None
    elements: list[str] | None = None
    total: str | None = None
    page: str | None = None


def split_escaped(text: str, sep: str) -> list[str]:
    """Split on unescaped `sep`, keeping the escapes (for later splits)."""
    parts, current, i = [], "", 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current += text[i : i + 2]
            i += 2
            continue
        if ch == sep:
            parts.append(current)
            current = ""
        else:
            current += ch
        i += 1
    parts.append(current)
    return parts


def unescape(text: str) -> str:
    out, i = "", 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in ",|$\\":
            out += text[i + 1]
            i += 2
        else:
            out += text[i]
            i += 1
    return out


def parse_clause(name: str, value: str, depth: int = 0) -> Clause:
    if depth > MAX_CHAIN_DEPTH:
        raise bad_request("search chains are limited to three levels", name[:80])
    if name.startswith("_has:"):
        parts = name.split(":", 3)
        if len(parts) != 4 or not all(parts[1:]):
            raise bad_request("_has must look like _has:Type:reference-param:param=value", name[:80])
        inner = parse_clause(parts[3], value, depth + 1)
        return Clause("_has", None, [], has=HasClause(parts[1], parts[2], inner), raw_name=name)
    head, dot, rest = name.partition(".")
    code, _, modifier = head.partition(":")
    if not code:
        raise bad_request("a search parameter has no name", name[:80])
    chain = parse_clause(rest, value, depth + 1) if dot else None
    if dot and not rest:
        raise bad_request("a chained parameter needs a parameter after the dot", name[:80])
    values = [] if chain else split_escaped(value, ",")
    if not chain and any(v == "" for v in values) and modifier != "missing":
        raise bad_request(f"parameter '{code[:64]}' has an empty value", code[:64])
    return Clause(code, modifier or None, values, chain=chain, raw_name=name)


def _count(value: str) -> int:
    if not value.isdigit():
        raise bad_request("_count must be a non-negative integer", "_count")
    return min(int(value), MAX_COUNT)


def _include(name: str, value: str) -> Include:
    base, _, flag = name.partition(":")
    if flag not in ("", "iterate", "recurse"):
        raise bad_request(f"{base} supports only the :iterate modifier", name)
    parts = value.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise bad_request(f"{base} must look like Type:param or Type:param:TargetType", base)
    return Include(parts[0], parts[1], parts[2] if len(parts) == 3 else None, bool(flag), base == "_revinclude")


def parse(params: list[tuple[str, str]]) -> SearchQuery:
    query = SearchQuery()
    for name, value in params:
        base = name.split(":", 1)[0]
        if base == "_count":
            query.count = _count(value)
        elif base == "_sort":
            query.sort = [(k.lstrip("-"), k.startswith("-")) for k in value.split(",") if k.strip("-")]
            if not query.sort:
                raise bad_request("_sort has no parameter", "_sort")
        elif base in ("_include", "_revinclude"):
            if len(query.includes) >= MAX_INCLUDE_PARAMS:
                raise bad_request(f"at most {MAX_INCLUDE_PARAMS} _include and _revinclude parameters", base, code="too-costly")
            query.includes.append(_include(name, value))
        elif base == "_summary":
            if value not in SUMMARY_VALUES:
                raise bad_request("_summary must be true, false, text, data or count", "_summary")
            query.summary = value
        elif base == "_elements":
            query.elements = [e.strip() for e in value.split(",") if e.strip()]
        elif base == "_total":
            if value not in TOTAL_VALUES:
                raise bad_request("_total must be none, estimate or accurate", "_total")
            query.total = value
        elif base == "_page":
            query.page = value
        elif base in ("_format", "_pretty"):
            continue
        else:
            if len(query.clauses) >= MAX_CLAUSES:
                raise bad_request(f"at most {MAX_CLAUSES} search parameters", name[:64], code="too-costly")
            query.clauses.append(parse_clause(name, value))
    return query
