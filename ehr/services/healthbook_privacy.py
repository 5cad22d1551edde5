"""The privacy pages of the health book: who opened my record, sharing it with a hospital
(Consent with its proof), and my correction and deletion requests.

- Access log: the audit trail of the record (`audit_events.search` with the patient's context),
  newest first, with names resolved: staff by their account's display name, organizations
  through the directory; break-glass openings come with their stated reason. The patient's own
  reading of the book is left out unless asked for.
- Sharing: a grant is a Consent written by the patient (Law 91/2025 Art. 9, Decree 356/2025
  Art. 6): per purpose, for a period, naming one organization, with its proof (`dateTime`,
  `performer`, `policy.uri` of the versioned text the patient agreed to, `provision.type`,
  `provision.purpose`, see `rules.check_consent`). Revoking sets the Consent inactive; the store
  honours it on the hospital's next request. The page also lists the facilities that have the
  patient in their care (registered or checked in there) until when, and ends any of them.
- Data requests: `data_requests` (Task) for the patient or a patient they represent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ehr.fhir import healthbook as hb
from ehr.fhir import jsonio
from ehr.fhir.outcomes import bad_request, not_found
from ehr.services import accounts, audit_events, care, data_requests, directory, resources, search
from ehr.services.context import AccessContext
from ehr.services.healthbook import for_patient
from ehr.store.runtime import Store

ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
PURPOSES = ("TREAT", "ETREAT", "HPAYMT", "HRESCH")  # treatment, emergency treatment, insurance payment, research
DURATIONS = (30, 90, 180, 365, 730)  # days
CONSENT_TEXT = "https://fhir.ehr-vn.org/consent-text/share-records/v1"  # the versioned text shown on the sharing page
LOG_PAGES, LOG_PAGE_SIZE, LOG_LIMIT = 5, 200, 400  # records looked at; shown grouped


# --- who opened my record -------------------------------------------------------------------------


@dataclass(frozen=True)
class LogEntry:
    access: hb.Access  # the newest of the group
    count: int  # records grouped into this line
    since: str  # time of the oldest record of the group
    resource_types: tuple[str, ...]
    who: str  # a staff member's name, or "" (the page names the kind of principal)
    organization: str  # name of the organization, or ""
    mine: bool  # the signed-in account itself


@dataclass(frozen=True)
class Emergency:
    who: str
    organization: str
    reason: str | None  # None when the record's key was erased
    opened: int  # microseconds since the epoch
    until: int


@dataclass(frozen=True)
class AccessLog:
    entries: list[LogEntry]
    emergencies: list[Emergency]
    hidden_own: int  # own reads left out


def access_log(store: Store, ctx: AccessContext, patient_id: str, include_own: bool = False) -> AccessLog:
    ctx = for_patient(store, ctx, patient_id)
    events: list[hb.Access] = []
    hidden = 0
    params: dict[str, list[str]] = {"patient": [patient_id], "_count": [str(LOG_PAGE_SIZE)]}
    for _ in range(LOG_PAGES):
        page = audit_events.search(store, ctx, params)
        for event in page.events:
            entry = hb.access_entry(event)
            if entry.principal == ctx.principal and not include_own:
                hidden += 1
            else:
                events.append(entry)
        if not page.next_token or len(events) >= LOG_LIMIT:
            break
        params = {"_page": [page.next_token]}
    events = events[:LOG_LIMIT]
    openings = care.emergency_accesses(store, patient_id)
    staff_names = _staff_names(store, {e.account for e in events if e.kind == "staff"} | {o.account_id for o in openings})
    org_names = directory.names(store, ctx, {e.organization for e in events if e.organization} | {o.organization_id for o in openings if o.organization_id})
    return AccessLog(
        entries=[LogEntry(g.latest, g.count, g.earliest_when, g.resource_types,
                          staff_names.get(g.latest.account, "") if g.latest.kind == "staff" else "",
                          org_names.get(g.latest.organization or "", ""), g.latest.principal == ctx.principal)
                 for g in hb.group_accesses(events)],
        emergencies=[Emergency(staff_names.get(o.account_id, ""), org_names.get(o.organization_id or "", ""), o.reason, o.created_at, o.expires_at)
                     for o in openings],
        hidden_own=hidden,
    )


def _staff_names(store: Store, account_ids: set[str]) -> dict[str, str]:
    return {a: accounts.display_name(store, a) or "" for a in sorted(account_ids) if a}


# --- sharing ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shared:
    grant: hb.Grant
    organizations: list[str]  # names; empty: every organization


def grants(store: Store, ctx: AccessContext, patient_id: str, now: datetime | None = None) -> list[Shared]:
    ctx = for_patient(store, ctx, patient_id)
    page = search.search(store, ctx, "Consent", [("patient", f"Patient/{patient_id}"), ("_count", "200")])
    docs = [jsonio.loads_stored(v.body or b"{}") for v, mode in page.entries if mode == "match"]
    found = hb.grants(docs, patient_id, now or datetime.now(hb.VN))
    named = directory.names(store, ctx, {o for g in found for o in g.organizations})
    return [Shared(g, [named.get(o, o) for o in g.organizations]) for g in found]


def consent_document(patient_id: str, performer_id: str, organization_id: str, purpose: str, start: datetime, days: int) -> dict[str, Any]:
    """The Consent of a grant, with its proof (see `rules.check_consent`)."""
    end = start + timedelta(days=days)
    return {
        "resourceType": "Consent", "status": "active", "dateTime": start.isoformat(timespec="seconds"),
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "performer": [{"reference": f"Patient/{performer_id}"}],
        "policy": [{"uri": CONSENT_TEXT}],
        "provision": {
            "type": "permit",
            "period": {"start": start.isoformat(timespec="seconds"), "end": end.isoformat(timespec="seconds")},
            "purpose": [{"system": ACT_REASON, "code": purpose}],
            "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": hb.CONSENT_ACTOR_ROLE}]},
                       "reference": {"reference": f"Organization/{organization_id}"}}],
        },
    }


def grant(store: Store, ctx: AccessContext, patient_id: str, organization_id: str, purpose: str, days: int,
          now: datetime | None = None) -> str:
    """Share the record with one organization for one purpose and a period; the Consent id."""
    ctx = for_patient(store, ctx, patient_id)
    if purpose not in PURPOSES:
        raise bad_request("choose a purpose of use", "purpose")
    if days not in DURATIONS:
        raise bad_request("choose how long the access lasts", "days")
    if directory.get(store, ctx, organization_id) is None:
        raise bad_request("choose a facility from the directory", "organization")
    # The performer is whoever gives the consent: the patient, or their legal representative.
    doc = consent_document(patient_id, str(ctx.on_behalf_of), organization_id, purpose, now or datetime.now(hb.VN), days)
    return resources.create(store, ctx, doc).version.logical_id


def revoke(store: Store, ctx: AccessContext, patient_id: str, consent_id: str) -> None:
    """Withdraw a consent (status inactive): the organization's next request no longer sees the record."""
    ctx = for_patient(store, ctx, patient_id)
    seen = resources.read(store, ctx, "Consent", consent_id)
    doc = jsonio.loads_stored(seen.body or b"{}")
    if hb.ref_id(doc.get("patient"), "Patient") != patient_id:
        raise not_found("this consent is not in the health book")
    if doc.get("status") != "active":
        return
    doc["status"] = "inactive"
    resources.update(store, ctx, "Consent", consent_id, doc, if_match=seen.version_id)


@dataclass(frozen=True)
class Caring:
    relationship: care.CareRelationship
    organization: str  # the facility's name from the directory (its id if it has none)


def caring(store: Store, ctx: AccessContext, patient_id: str) -> list[Caring]:
    """The facilities that see the record because the patient is in their care."""
    ctx = for_patient(store, ctx, patient_id)
    found = care.relationships(store, patient_id)
    named = directory.names(store, ctx, {r.organization_id for r in found})
    return [Caring(r, named.get(r.organization_id, r.organization_id)) for r in found]


def end_care(store: Store, ctx: AccessContext, patient_id: str, organization_id: str) -> None:
    """End a facility's care relationship with the patient (the patient or their representative)."""
    care.end(store, for_patient(store, ctx, patient_id), patient_id, organization_id)


# --- data requests --------------------------------------------------------------------------------------


def requests(store: Store, ctx: AccessContext, patient_id: str) -> tuple[list[hb.Request], data_requests.Outlook]:
    ctx = for_patient(store, ctx, patient_id)
    return hb.requests(data_requests.of_patient(store, ctx, patient_id)), data_requests.deletion_outlook(store, patient_id)


def submit_request(store: Store, ctx: AccessContext, patient_id: str, kind: str, text: str) -> str:
    ctx = for_patient(store, ctx, patient_id)
    return data_requests.submit(store, ctx, kind, text, patient_id)
