"""Bundle ingestion, first cut: a transaction of POST entries linked by `urn:uuid:` fullUrls,
written atomically (one database transaction; any failure writes nothing). Used by the demo loader
and the benchmark; the full transaction/batch interaction builds on it."""

from __future__ import annotations

import uuid
from typing import Any

from ehr.fhir import references as refs
from ehr.fhir.outcomes import FhirError, Issue, bad_request, not_supported
from ehr.services.context import AccessContext
from ehr.services.policy import authorize
from ehr.services.resources import (
    PendingReference,
    check_client_writable,
    check_references,
    check_type,
    flush_writes,
    prepare_write,
    write_prepared,
)
from ehr.store.repository import StoredVersion
from ehr.store.runtime import Store


def _at(index: int, exc: FhirError) -> FhirError:
    """Re-address a resource's issues to its bundle entry."""
    issues = []
    for issue in exc.issues:
        expression = tuple(f"Bundle.entry[{index}].resource" + (e[e.index(".") :] if "." in e else "") for e in issue.expression)
        issues.append(Issue(issue.code, f"entry {index}: {issue.diagnostics}", issue.severity, expression or (f"Bundle.entry[{index}]",)))
    return FhirError(exc.status, issues, exc.headers)


def ingest_transaction(store: Store, ctx: AccessContext, bundle: dict[str, Any]) -> list[StoredVersion]:
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
        raise bad_request("expected a Bundle of type transaction", "Bundle.type")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise bad_request("Bundle.entry must be an array", "Bundle.entry")
    planned: list[tuple[str, str, dict[str, Any]]] = []
    mapping: dict[str, str] = {}
    for i, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        request = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(request, dict):
            raise bad_request(f"entry {i} needs a resource and a request", f"Bundle.entry[{i}]")
        if request.get("method") != "POST":
            raise not_supported(422, f"entry {i}: only POST entries are loaded by this loader")
        rtype = str(resource.get("resourceType"))
        try:
            check_type(rtype)
            authorize(ctx, "create", rtype)
            check_client_writable(ctx, rtype)
        except FhirError as exc:
            raise _at(i, exc) from None
        logical_id = str(uuid.uuid4())
        full_url = entry.get("fullUrl")
        if isinstance(full_url, str):
            if full_url in mapping:
                raise bad_request(f"entry {i}: duplicate fullUrl", f"Bundle.entry[{i}].fullUrl")
            mapping[full_url] = f"{rtype}/{logical_id}"
        planned.append((rtype, logical_id, resource))
    for _, _, resource in planned:
        refs.rewrite(resource, mapping)
    prepared = []
    for i, (rtype, logical_id, resource) in enumerate(planned):
        try:
            prepared.append(prepare_write(store, resource, rtype, logical_id))
        except FhirError as exc:
            raise _at(i, exc) from None
    stored = []
    with store.writing() as uow:
        deferred: list[PendingReference] = []
        for i, ((rtype, logical_id, _), ready) in enumerate(zip(planned, prepared)):
            try:
                stored.append(write_prepared(uow, store, ready, rtype, logical_id, "POST", None, deferred))
            except FhirError as exc:
                raise _at(i, exc) from None
        flush_writes(uow)
        check_references(uow, deferred)
    return stored
