"""Recording a visit: the clinic's form becomes one all-or-nothing FHIR transaction.

The same services as the FHIR API write it (validation, references, policy, audit). Each entry is
a conditional create on an identifier made from the form's submission token, so a double
submission (a second click, a resent form) writes nothing new and returns the same Encounter.
A visit recorded into the queue's Encounter (or an edit of an unsigned visit) updates that
Encounter with If-Match; a resubmission of the same form finds its token and writes nothing.

Corrections keep a trail: cancelling an unsigned visit marks it and everything written with it
entered-in-error (kept for staff, hidden from the patient); an edit marks the items it replaces
the same way in the transaction that writes the new ones; signed visits are amended
(`signing.amend`).
"""

from __future__ import annotations

from typing import Any

from ehr.fhir import corrections, jsonio
from ehr.fhir import visit as visit_fhir
from ehr.fhir.outcomes import FhirError, Issue, conflict
from ehr.services import bundles, policy, resources, search
from ehr.services.context import AccessContext
from ehr.store import repository
from ehr.store.runtime import Store


def record(store: Store, ctx: AccessContext, visit: visit_fhir.Visit) -> str:
    """Write the visit; returns the Encounter id (the existing one for a resubmitted form)."""
    policy.authorize(ctx, "create", "Encounter")
    if ctx.kind == "staff" and ctx.organization != visit.organization_id:
        raise FhirError(403, [Issue("forbidden", "a visit is recorded for the facility the staff member works for")])
    if visit.encounter:
        done = recorded(store, ctx, visit.token)
        if done:
            return done
    bundle = visit_fhir.transaction(visit, store.systems.base)
    responses = bundles.transaction(store, ctx, bundle, representation=False)
    location = responses[0].location or ""  # the Encounter is the first entry
    return location.split("/")[1]


def recorded(store: Store, ctx: AccessContext, token: str) -> str | None:
    """The Encounter a form with this submission token already wrote, if any."""
    system = f"{store.systems.base.rstrip('/')}/{visit_fhir.ITEM_SYSTEM_PATH}"
    page = search.search(store, ctx, "Encounter", [("identifier", f"{system}|{token}/encounter"), ("_count", "1")])
    return next((v.logical_id for v, mode in page.entries if mode == "match"), None)


def open_encounter(store: Store, ctx: AccessContext, encounter_id: str) -> tuple[dict[str, Any], str]:
    """The facility's unsigned Encounter and its version, to record into or edit; 409 otherwise."""
    found = resources.read(store, ctx, "Encounter", encounter_id)
    doc = jsonio.loads_stored(found.body or b"{}")
    doc["id"] = encounter_id
    with store.reading(policy.gate(ctx)) as uow:
        current = repository.current(uow, "Encounter", encounter_id)
    if current is not None and current.signed_by:
        raise conflict("the visit is signed; corrections are made as amendments")
    if doc.get("status") in ("cancelled", corrections.ERROR):
        raise conflict("the visit is cancelled")  # a finished visit not yet signed can still be completed
    if ((doc.get("serviceProvider") or {}).get("reference") or "") != f"Organization/{ctx.organization}":
        raise FhirError(403, [Issue("forbidden", "only the facility of the visit records into it")])
    return doc, str(found.version_id)


def cancel(store: Store, ctx: AccessContext, encounter: dict[str, Any], items: list[dict[str, Any]]) -> None:
    """Mark an unsigned visit and its items entered-in-error, all or nothing."""
    entries = [{"resource": corrections.entered_in_error(doc), "request": {"method": "PUT", "url": f"{doc['resourceType']}/{doc['id']}"}}
               for doc in [encounter, *items] if not corrections.is_error(doc)]
    bundles.transaction(store, ctx, {"resourceType": "Bundle", "type": "transaction", "entry": entries}, representation=False)
