"""Lab orders and results of a visit, each written as one FHIR transaction.

`order` writes a ServiceRequest per catalogue test; `record_results` writes the Observations, one
DiagnosticReport listing them, and marks the orders completed, all or nothing. Only doctors do
either: the policy lets nurses write Observations but not ServiceRequests or DiagnosticReports, so a
nurse sees the orders and results and enters none (the policy is not widened for this).

A signed visit stays as signed: its orders and results are new resources that reference its
Encounter. An order signed with its visit cannot become `completed` (signed resources are
read-only), so it stays `active`; an order counts as pending until an Observation is `basedOn` it.
Orders get an id derived from the form's one-time token and the test code, so a resubmitted order
form writes nothing new.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ehr.fhir import corrections, jsonio
from ehr.fhir import labs as lab_fhir
from ehr.fhir.outcomes import FhirError, Issue, conflict, unprocessable
from ehr.services import bundles, catalogue, everything, policy, practitioners, resources, search
from ehr.services.common import format_instant
from ehr.services.context import AccessContext
from ehr.store import repository
from ehr.store.keys import now_us
from ehr.store.runtime import Store


@dataclass(frozen=True)
class Order:
    """A pending order: the stored ServiceRequest and its catalogue test (unit, reference range)."""
    request: dict[str, Any]
    test: lab_fhir.Test


def _encounter(store: Store, ctx: AccessContext, encounter_id: str) -> dict[str, Any]:
    doc = jsonio.loads_stored(resources.read(store, ctx, "Encounter", encounter_id).body or b"{}")
    if doc.get("status") in ("cancelled", corrections.ERROR):
        raise conflict("the visit is cancelled")
    if ((doc.get("serviceProvider") or {}).get("reference") or "") != f"Organization/{ctx.organization}":
        raise FhirError(403, [Issue("forbidden", "only the facility of the visit orders and records its tests")])
    doc["id"] = encounter_id
    return doc


def _clinician(store: Store, ctx: AccessContext) -> dict[str, Any] | None:
    who = practitioners.for_account(store, ctx)
    return {"reference": f"Practitioner/{who.practitioner_id}", "display": who.name} if who else None


def _now(now: int | None) -> str:
    return format_instant(now if now is not None else now_us())


def test_of(store: Store, code: str, version: str | None = None) -> lab_fhir.Test | None:
    """The catalogue test (in the version it was ordered with, when given) as a `labs.Test`."""
    item = catalogue.get(store, "labs", code, version=version) if version else None
    item = item or catalogue.get(store, "labs", code)
    coding = catalogue.coding(store, "labs", code)
    if item is None or coding is None:
        return None
    if version:
        coding = {**coding, "version": version}
    return lab_fhir.Test(coding, item.unit, item.low, item.high, item.loinc)  # type: ignore[union-attr]


def order(store: Store, ctx: AccessContext, encounter_id: str, codes: list[str], token: str,
          now: int | None = None) -> list[str]:
    """ServiceRequests for the catalogue tests `codes`; returns their ids. 422 for an unknown code."""
    policy.authorize(ctx, "create", "ServiceRequest")
    encounter = _encounter(store, ctx, encounter_id)
    patient_id = str((encounter.get("subject") or {}).get("reference") or "").split("/")[-1]
    requester, authored = _clinician(store, ctx), _now(now)
    entries, ids = [], []
    for code in dict.fromkeys(c.strip() for c in codes if c.strip()):
        test = test_of(store, code)
        if test is None:
            raise unprocessable(f"{code} is not in the lab catalogue", "ServiceRequest.code")
        rid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{encounter_id}|{token}|{test.coding['code']}"))
        ids.append(rid)
        if _exists(store, ctx, "ServiceRequest", rid):
            continue  # the same form sent again
        resource = lab_fhir.service_request(test, patient_id=patient_id, encounter_id=encounter_id, practitioner=requester,
                                            authored=authored)
        entries.append({"resource": {**resource, "id": rid}, "request": {"method": "PUT", "url": f"ServiceRequest/{rid}"}})
    if entries:
        bundles.transaction(store, ctx, {"resourceType": "Bundle", "type": "transaction", "entry": entries}, representation=False)
    return ids


def _exists(store: Store, ctx: AccessContext, rtype: str, rid: str) -> bool:
    try:
        resources.read(store, ctx, rtype, rid)
    except FhirError:
        return False
    return True


def _visit_docs(store: Store, ctx: AccessContext, encounter: dict[str, Any]) -> tuple[list[dict[str, Any]], set[str]]:
    """The visit's ServiceRequests and the ids of those a result is based on."""
    patient_id = str((encounter.get("subject") or {}).get("reference") or "").split("/")[-1]
    ref = f"Encounter/{encounter['id']}"
    requests: list[dict[str, Any]] = []
    params: dict[str, str | None] = {"_type": "ServiceRequest", "_count": "100"}
    while True:
        page = everything.patient_everything(store, ctx, patient_id, params)
        for v in page.entries:
            doc = jsonio.loads_stored(v.body or b"{}")
            if doc.get("resourceType") == "ServiceRequest" and (doc.get("encounter") or {}).get("reference") == ref:
                requests.append({**doc, "id": v.logical_id})
        if not page.next_token:
            break
        params = {"_page": page.next_token}
    found = search.search(store, ctx, "Observation", [("encounter", ref), ("_count", "100")])
    done = {str(b.get("reference", "")).split("/")[-1] for v, mode in found.entries if mode == "match"
            for b in jsonio.loads_stored(v.body or b"{}").get("basedOn") or ()}
    return requests, done


def pending(store: Store, ctx: AccessContext, encounter_id: str) -> list[Order]:
    """The visit's active lab orders without a result yet, oldest first."""
    if not policy.may(ctx, "read", "ServiceRequest"):
        return []
    encounter = jsonio.loads_stored(resources.read(store, ctx, "Encounter", encounter_id).body or b"{}")
    encounter["id"] = encounter_id
    requests, done = _visit_docs(store, ctx, encounter)
    out = []
    for doc in sorted(requests, key=lambda d: (str(d.get("authoredOn") or ""), d["id"])):
        if doc.get("status") != "active" or doc["id"] in done:
            continue
        coding = next((c for c in (doc.get("code") or {}).get("coding") or () if c.get("system") == catalogue.SYSTEMS["labs"]), None)
        test = test_of(store, str(coding.get("code")), coding.get("version")) if coding else None
        if test is not None:
            out.append(Order(doc, test))
    return out


def record_results(store: Store, ctx: AccessContext, encounter_id: str, values: dict[str, Decimal],
                   now: int | None = None) -> str:
    """Results of pending orders (ServiceRequest id -> value): the Observations, one DiagnosticReport,
    the orders completed, in one transaction. Returns the DiagnosticReport's id."""
    for rtype in ("Observation", "DiagnosticReport"):
        policy.authorize(ctx, "create", rtype)
    _encounter(store, ctx, encounter_id)
    orders = {o.request["id"]: o for o in pending(store, ctx, encounter_id)}
    missing = [rid for rid in values if rid not in orders]
    if missing or not values:
        raise conflict("these orders are not pending (already resulted or unknown)" if missing else "no result given")
    clinician = _clinician(store, ctx)
    performers = [*([clinician] if clinician else []), {"reference": f"Organization/{ctx.organization}"}]
    when = _now(now)
    entries: list[dict[str, Any]] = []
    urls: list[str] = []
    chosen = [orders[rid] for rid in values]
    for o in chosen:
        url = f"urn:uuid:{uuid.uuid4()}"
        urls.append(url)
        obs = lab_fhir.observation(o.test, values[o.request["id"]], request=o.request, performers=performers, effective=when)
        entries.append({"fullUrl": url, "resource": obs, "request": {"method": "POST", "url": "Observation"}})
    report = lab_fhir.report([o.test for o in chosen], urls, [o.request for o in chosen], performers=performers, issued=when)
    entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": report, "request": {"method": "POST", "url": "DiagnosticReport"}})
    with store.reading(policy.gate(ctx)) as uow:
        signed = {rid for rid in values if (cur := repository.current(uow, "ServiceRequest", rid)) is not None and cur.signed_by}
    for o in chosen:
        if o.request["id"] in signed:
            continue  # signed with its visit: read-only, pending no more once its result is in
        done = {k: val for k, val in o.request.items() if k != "meta"}
        done["status"] = "completed"
        entries.append({"resource": done, "request": {"method": "PUT", "url": f"ServiceRequest/{o.request['id']}",
                                                      "ifMatch": f'W/"{(o.request.get("meta") or {}).get("versionId")}"'}
                        if (o.request.get("meta") or {}).get("versionId") else {"method": "PUT", "url": f"ServiceRequest/{o.request['id']}"}})
    responses = bundles.transaction(store, ctx, {"resourceType": "Bundle", "type": "transaction", "entry": entries}, representation=False)
    return str(responses[len(chosen)].location or "").split("/")[1]
