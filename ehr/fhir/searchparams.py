"""Search parameters, from the one declaration in `fhir/search-parameters.json`.

That Bundle of SearchParameter resources drives the index (what is extracted and how it is
protected), the query parser (which names, modifiers and prefixes are accepted) and the
CapabilityStatement. The extension `search-index` says how values are indexed:
`plain` (clinical codes, dates, quantities, references: stored as they are), `blind` (identifying
values: keyed HMAC tokens only) or `blind-buckets` (birth dates: HMAC tokens of year/month/day
buckets).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ehr.fhir.fhirpath import Extractor, compile_expression

DECLARATIONS = Path(__file__).resolve().parents[2] / "fhir" / "search-parameters.json"
INDEX_EXTENSION = "https://fhir.ehr-vn.org/StructureDefinition/search-index"

# Parameters every type has, answered from the resources table itself.
COMMON = {"_id": "token", "_lastUpdated": "date"}


@dataclass(frozen=True)
class SearchParam:
    resource_type: str
    code: str
    type: str
    expression: str
    mode: str
    url: str
    description: str
    targets: tuple[str, ...]
    modifiers: frozenset[str]
    comparators: frozenset[str]
    extract: Extractor = field(compare=False, repr=False)

    @property
    def blind(self) -> bool:
        return self.mode != "plain"

    @property
    def sortable(self) -> bool:
        """Only parameters whose index keeps order can sort: never blind-indexed ones."""
        return not self.blind and self.type in ("date", "number", "quantity", "token")


class Registry:
    def __init__(self, params: list[SearchParam]) -> None:
        self._by_key = {(p.resource_type, p.code): p for p in params}
        self._by_type: dict[str, list[SearchParam]] = {}
        for p in params:
            self._by_type.setdefault(p.resource_type, []).append(p)

    def get(self, resource_type: str, code: str) -> SearchParam | None:
        return self._by_key.get((resource_type, code))

    def for_type(self, resource_type: str) -> list[SearchParam]:
        return self._by_type.get(resource_type, [])

    def types(self) -> list[str]:
        return sorted(self._by_type)

    def __len__(self) -> int:
        return len(self._by_key)


def _load(path: Path) -> list[SearchParam]:
    bundle = json.loads(path.read_text("utf-8"))
    params = []
    for entry in bundle["entry"]:
        sp = entry["resource"]
        mode = next((e["valueCode"] for e in sp.get("extension", []) if e["url"] == INDEX_EXTENSION), "plain")
        extractors = compile_expression(sp["expression"])
        for base in sp["base"]:
            params.append(
                SearchParam(
                    resource_type=base,
                    code=sp["code"],
                    type=sp["type"],
                    expression=sp["expression"],
                    mode=mode,
                    url=sp["url"],
                    description=sp.get("description", ""),
                    targets=tuple(sp.get("target", ())),
                    modifiers=frozenset(sp.get("modifier", ())),
                    comparators=frozenset(sp.get("comparator", ())),
                    extract=extractors[base],
                )
            )
    return params


@lru_cache(maxsize=1)
def registry() -> Registry:
    return Registry(_load(DECLARATIONS))
