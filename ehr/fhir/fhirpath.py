"""The subset of FHIRPath that search-parameter expressions here use, compiled against the R4B
model metadata into plain dictionary walks.

Supported: `Type.a.b` paths, unions with `|`, choice elements (`Observation.effective` matches
effectiveDateTime, effectivePeriod...), `.ofType(T)`, `.where(resolve() is T)` and
`.where(field='literal')`. Anything else is refused when the declarations load, so an unsupported
expression can never silently index nothing. A general FHIRPath engine evaluates each expression
per resource at a cost that would dominate the write path; these walks are a few microseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from ehr.fhir.resources import (
    KIND_BASE64,
    KIND_BOOL,
    KIND_DECIMAL,
    KIND_INT,
    KIND_OBJECT,
    KIND_RESOURCE,
    KIND_STR,
    Element,
    element_table,
)

_PRIMITIVE_NAMES = {KIND_BOOL: "boolean", KIND_INT: "integer", KIND_DECIMAL: "decimal", KIND_STR: "string", KIND_BASE64: "base64Binary"}
_WHERE_RESOLVE = re.compile(r"^where\(resolve\(\) is ([A-Z][A-Za-z]+)\)$")
_WHERE_EQUALS = re.compile(r"^where\(([a-z][A-Za-z]*)\s*=\s*'([^']*)'\)$")
_OF_TYPE = re.compile(r"^ofType\(([A-Za-z]+)\)$")
_NAME = re.compile(r"^[a-z][A-Za-z0-9]*$")


class UnsupportedExpression(ValueError):
    pass


@dataclass(frozen=True)
class Candidate:
    key: str
    element: Element
    type_name: str


def _type_name(key: str, step: str, element: Element) -> str:
    if element.kind == KIND_OBJECT and element.child:
        return element.child.rsplit(".", 1)[-1]
    if element.kind == KIND_RESOURCE:
        return "Resource"
    suffix = key[len(step) :]
    if suffix:  # choice element: valueDateTime -> dateTime
        return suffix[0].lower() + suffix[1:]
    return _PRIMITIVE_NAMES.get(element.kind, "string")


def _split_steps(path: str) -> list[str]:
    steps, depth, current = [], 0, ""
    for ch in path:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "." and depth == 0:
            steps.append(current)
            current = ""
        else:
            current += ch
    steps.append(current)
    return [s.strip() for s in steps]


Filter = Callable[[Any], bool]
Extractor = Callable[[dict[str, Any]], list[tuple[Any, str]]]


def _reference_is(target: str) -> Filter:
    prefix = target + "/"

    def accept(value: Any) -> bool:
        ref = value.get("reference") if isinstance(value, dict) else None
        if not isinstance(ref, str):
            return False
        tail = ref.split("/_history/")[0]
        return tail.startswith(prefix) or f"/{prefix}" in tail

    return accept


def _field_equals(field_name: str, literal: str) -> Filter:
    return lambda value: isinstance(value, dict) and value.get(field_name) == literal


def compile_path(path: str) -> tuple[str, Extractor]:
    """Compile one `Type.step...` path; returns (resource type, extractor)."""
    steps = _split_steps(path)
    resource_type = steps[0]
    if not re.match(r"^[A-Z][A-Za-z]+$", resource_type):
        raise UnsupportedExpression(path)
    plan: list[tuple[list[Candidate], list[Filter]]] = []
    model = resource_type
    previous: list[Candidate] | None = None
    for step in steps[1:]:
        of_type = _OF_TYPE.match(step)
        where_resolve = _WHERE_RESOLVE.match(step)
        where_equals = _WHERE_EQUALS.match(step)
        if of_type and previous is not None:
            wanted = of_type.group(1).lower()
            kept = [c for c in previous if c.type_name.lower() == wanted]
            if not kept:
                raise UnsupportedExpression(f"{path}: no {of_type.group(1)} at this step")
            plan[-1] = (kept, plan[-1][1])
            previous = kept
        elif (where_resolve or where_equals) and previous is not None:
            accept = _reference_is(where_resolve.group(1)) if where_resolve else _field_equals(*where_equals.groups())  # type: ignore[union-attr]
            plan[-1][1].append(accept)
        elif _NAME.match(step):
            if previous is not None:
                children = {c.element.child for c in previous}
                if len(children) != 1 or None in children:
                    raise UnsupportedExpression(f"{path}: cannot step into '{step}'")
                model = children.pop()  # type: ignore[assignment]
            table = element_table(model)
            if step in table:
                candidates = [Candidate(step, table[step], _type_name(step, step, table[step]))]
            else:
                candidates = [
                    Candidate(k, e, _type_name(k, step, e))
                    for k, e in table.items()
                    if k.startswith(step) and len(k) > len(step) and k[len(step)].isupper()
                ]
            if not candidates:
                raise UnsupportedExpression(f"{path}: unknown element '{step}'")
            plan.append((candidates, []))
            previous = candidates
        else:
            raise UnsupportedExpression(f"{path}: unsupported step '{step}'")
    if not plan:
        raise UnsupportedExpression(path)

    def extract(doc: dict[str, Any]) -> list[tuple[Any, str]]:
        nodes: list[tuple[Any, str]] = [(doc, resource_type)]
        for candidates, filters in plan:
            following: list[tuple[Any, str]] = []
            for node, _ in nodes:
                if not isinstance(node, dict):
                    continue
                for cand in candidates:
                    value = node.get(cand.key)
                    if value is None:
                        continue
                    for item in value if isinstance(value, list) else (value,):
                        if item is not None and all(f(item) for f in filters):
                            following.append((item, cand.type_name))
            nodes = following
            if not nodes:
                break
        return nodes

    return resource_type, extract


def compile_expression(expression: str) -> dict[str, Extractor]:
    """Compile `A.x | B.y | A.z` into one extractor per resource type."""
    by_type: dict[str, list[Extractor]] = {}
    for path in expression.split("|"):
        rtype, extractor = compile_path(path.strip())
        by_type.setdefault(rtype, []).append(extractor)

    def union(extractors: list[Extractor]) -> Extractor:
        if len(extractors) == 1:
            return extractors[0]
        return lambda doc: [v for ex in extractors for v in ex(doc)]

    return {rtype: union(exs) for rtype, exs in by_type.items()}
