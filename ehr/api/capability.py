"""The CapabilityStatement, derived from the routes the app really registered."""

from __future__ import annotations

from flask import Flask

from ehr.api import audit
from ehr.api.bulk import SYSTEM_OPERATIONS, TYPE_OPERATIONS
from ehr.api.operations import OPERATIONS
from ehr.fhir import capability
from ehr.fhir.resources import SERVED_TYPES
from ehr.fhir.searchparams import registry
from ehr.services.common import now_instant
from ehr.services.resources import SERVER_WRITTEN_TYPES

TYPE_ROUTES = {
    ("/fhir/<rtype>", "POST"): "create",
    ("/fhir/<rtype>", "GET"): "search-type",
    ("/fhir/<rtype>/<rid>", "GET"): "read",
    ("/fhir/<rtype>/<rid>/_history/<vid>", "GET"): "vread",
    ("/fhir/<rtype>/<rid>", "PUT"): "update",
    ("/fhir/<rtype>/<rid>", "PATCH"): "patch",
    ("/fhir/<rtype>/<rid>", "DELETE"): "delete",
    ("/fhir/<rtype>/<rid>/_history", "GET"): "history-instance",
    ("/fhir/<rtype>/_history", "GET"): "history-type",
}
SYSTEM_ROUTES = {("/fhir/_history", "GET"): "history-system", ("/fhir", "POST"): "transaction"}
CONDITIONAL_ROUTES = {("/fhir/<rtype>", "PUT"): "conditional-update", ("/fhir/<rtype>", "DELETE"): "conditional-delete"}
CLIENT_WRITES = {"create", "update", "patch", "delete"}
# Interaction codes in the order of the R4 TypeRestfulInteraction value set.
ORDER = ["read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create", "search-type"]


def registered(app: Flask) -> set[tuple[str, str]]:
    return {(rule.rule, method) for rule in app.url_map.iter_rules() for method in rule.methods or ()}


def type_interactions(app: Flask) -> list[str]:
    routes = registered(app)
    found = {code for key, code in TYPE_ROUTES.items() if key in routes}
    return [code for code in ORDER if code in found]


def _documentation(p) -> str:  # type: ignore[no-untyped-def]
    parts = [p.description]
    if p.blind:
        parts.append("Indexed as keyed HMAC tokens (privacy): no :contains, no _sort.")
    if p.modifiers:
        parts.append("Modifiers: " + ", ".join(f":{m}" for m in sorted(p.modifiers)) + ".")
    if p.comparators:
        parts.append("Prefixes: " + ", ".join(sorted(p.comparators)) + ".")
    if p.sortable:
        parts.append("Sortable.")
    return " ".join(x for x in parts if x)


def capability_statement(app: Flask, base_url: str, token_url: str | None = None) -> dict[str, object]:
    interactions = type_interactions(app)
    routes = registered(app)
    types = {}
    for name in SERVED_TYPES:
        codes = [c for c in interactions if not (name in SERVER_WRITTEN_TYPES and c in CLIENT_WRITES)]
        params = [
            ("_id", "token", "Logical id of the resource", None),
            ("_lastUpdated", "date", "When the current version was written", None),
        ] + [(p.code, p.type, _documentation(p), p.url) for p in registry().for_type(name)]
        ops = list(dict.fromkeys((code, url) for key, (rtype, code, url) in {**OPERATIONS, **TYPE_OPERATIONS}.items() if rtype in (name, "*") and key in routes))
        writable = name not in SERVER_WRITTEN_TYPES
        if name == "AuditEvent" and ("/fhir/AuditEvent", "GET") in routes:
            # Served from the audit trail, not the resource store: read and search only.
            params = [(n, t, d, None) for n, t, d in audit.SEARCH_PARAMS]
            types[name] = capability.TypeCapability(["read", "search-type"], params)
            continue
        types[name] = capability.TypeCapability(
            codes, params if "search-type" in codes else [], "create" in codes, ops,
            conditional_update=writable and ("/fhir/<rtype>", "PUT") in routes,
            conditional_delete=writable and ("/fhir/<rtype>", "DELETE") in routes,
        )
    system = [code for key, code in SYSTEM_ROUTES.items() if key in routes]
    if "transaction" in system:
        system.append("batch")
    system_ops = [(code, url) for key, (code, url) in SYSTEM_OPERATIONS.items() if key in routes]
    return capability.build(
        base_url, app.config.get("EHR_VERSION", "0.1.0"), types, system, bool(app.config.get("EHR_REFERENTIAL_INTEGRITY")), now_instant(),
        system_ops, token_url if ("/fhir/.well-known/smart-configuration", "GET") in routes else None,
    )
