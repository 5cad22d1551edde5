"""Values the search index needs from a resource (pure functions over the resource dict)."""

from __future__ import annotations

from typing import Any, Iterator


def identifiers(doc: dict[str, Any]) -> Iterator[tuple[str | None, str | None]]:
    """(system, value) of every top-level identifier (a list in most types, single in a few)."""
    raw = doc.get("identifier")
    items = raw if isinstance(raw, list) else [raw] if isinstance(raw, dict) else []
    for item in items:
        if isinstance(item, dict):
            system, value = item.get("system"), item.get("value")
            yield (system if isinstance(system, str) else None, value if isinstance(value, str) else None)
