"""Recording a visit: the clinic's form becomes one all-or-nothing FHIR transaction.

The same services as the FHIR API write it (validation, references, policy, audit). Each entry is
a conditional create on an identifier made from the form's submission token, so a double
submission (a second click, a resent form) writes nothing new and returns the same Encounter.
"""

from __future__ import annotations

from ehr.fhir import visit as visit_fhir
from ehr.fhir.outcomes import FhirError, Issue
from ehr.services import bundles, policy
from ehr.services.context import AccessContext
from ehr.store.runtime import Store


def record(store: Store, ctx: AccessContext, visit: visit_fhir.Visit) -> str:
    """Write the visit; returns the Encounter id (the existing one for a resubmitted form)."""
    policy.authorize(ctx, "create", "Encounter")
    if ctx.kind == "staff" and ctx.organization != visit.organization_id:
        raise FhirError(403, [Issue("forbidden", "a visit is recorded for the facility the staff member works for")])
    bundle = visit_fhir.transaction(visit, store.systems.base)
    responses = bundles.transaction(store, ctx, bundle, representation=False)
    location = responses[0].location or ""  # the Encounter is the first entry
    return location.split("/")[1]
