"""Bundles as bytes. Stored resources are already canonical JSON, so entries embed them as-is
instead of parsing and re-serialising every resource of a page."""

from __future__ import annotations

import uuid
from typing import Any

from ehr.fhir import jsonio


def encode(bundle: dict[str, Any], entries: list[tuple[dict[str, Any], bytes | None]]) -> bytes:
    """Serialise `bundle` with `entries`: each entry dict plus, optionally, a raw resource."""
    parts = []
    for entry, resource in entries:
        encoded = jsonio.dumps(entry)
        if resource is not None:
            encoded = encoded[:-1] + (b',"resource":' if len(encoded) > 2 else b'"resource":') + resource + b"}"
        parts.append(encoded)
    head = jsonio.dumps({**bundle, "entry": []})
    if not parts:
        return jsonio.dumps({k: v for k, v in bundle.items()})
    # head ends with '"entry":[]...' somewhere inside; splice the entries into that array.
    marker = b'"entry":[]'
    at = head.index(marker) + len(marker) - 1
    return head[:at] + b",".join(parts) + head[at:]


def new_bundle(bundle_type: str, links: list[tuple[str, str]], total: int | None = None, timestamp: str | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": bundle_type}
    if timestamp:
        bundle["meta"] = {"lastUpdated": timestamp}
    if total is not None:
        bundle["total"] = total
    if links:
        bundle["link"] = [{"relation": rel, "url": url} for rel, url in links]
    return bundle
