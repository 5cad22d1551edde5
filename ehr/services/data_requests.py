"""Data-subject requests: a patient asks to correct or delete their data; a facility admin answers.

Each request is a FHIR Task in the patient's compartment (encrypted like the rest of the record):
`code` correction | deletion (https://fhir.ehr-vn.org/CodeSystem/data-subject-request), `for` the
patient, `authoredOn` the date, `description` the patient's words, `restriction.period.end` the
legal deadline (NĐ 356/2025 Art. 5: acknowledge within 2 working days; correct within 10 days;
delete within 20 days), `status` requested -> accepted | rejected | completed, and the answer in
`statusReason` / `note`.

Deletion of medical records is refused while they must be kept (TT 33/2025: 10 years after the
last record, 30 after death; Law 91/2025 Art. 14 allows the refusal with reasons): `deletion_outlook`
says so before the patient asks, and `answer` refuses a deletion during the retention period.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from ehr.fhir import jsonio
from ehr.fhir.outcomes import FhirError, Issue, bad_request, conflict
from ehr.services import keys, policy, resources, search
from ehr.services.common import format_instant
from ehr.services.context import AccessContext
from ehr.store.access import Gate
from ehr.store.keys import now_us
from ehr.store.runtime import Store

SYSTEM = "https://fhir.ehr-vn.org/CodeSystem/data-subject-request"
KINDS = ("correction", "deletion")
DAYS = {"correction": 10, "deletion": 20}
ACKNOWLEDGE_WORKING_DAYS = 2


def add_working_days(start: date, days: int) -> date:
    """`days` working days after `start` (Saturdays and Sundays do not count; public holidays are
    not in this calculation, which only makes the deadline earlier, never later)."""
    current = start
    while days:
        current += timedelta(days=1)
        if current.weekday() < 5:
            days -= 1
    return current


@dataclass(frozen=True)
class Outlook:
    deletion_possible: bool
    kept_until: date | None  # end of the retention period, when records must still be kept


def deletion_outlook(store: Store, patient_id: str, today: date | None = None) -> Outlook:
    until = keys.retention_until(store, patient_id)
    if until is None:
        return Outlook(True, None)
    kept = datetime.fromtimestamp(until / 1_000_000, tz=timezone.utc).date()
    return Outlook(kept <= (today or date.today()), kept)


def _own_patient(ctx: AccessContext) -> str:
    if ctx.kind != "patient" or not ctx.on_behalf_of:
        raise FhirError(403, [Issue("forbidden", "only the patient (or their representative) makes a data request")])
    return ctx.on_behalf_of


def submit(store: Store, ctx: AccessContext, kind: str, text: str, patient_id: str | None = None) -> str:
    """Record the patient's request; returns the Task id. The patient's own gate applies."""
    own = _own_patient(ctx)
    target = patient_id or own
    if target != own and target not in ctx.dependants:
        raise FhirError(403, [Issue("forbidden", "a request is made for yourself or a patient you represent")])
    if kind not in KINDS:
        raise bad_request("the request is a correction or a deletion", "code")
    words = " ".join((text or "").split())
    if not 5 <= len(words) <= 2000:
        raise bad_request("describe the request (5 to 2000 characters)", "description")
    today = date.today()
    task_id = str(uuid.uuid4())
    doc: dict[str, Any] = {
        "resourceType": "Task", "id": task_id, "status": "requested", "intent": "order",
        "code": {"coding": [{"system": SYSTEM, "code": kind}]},
        "for": {"reference": f"Patient/{target}"},
        "authoredOn": format_instant(now_us()),
        "description": words,
        "restriction": {"period": {"end": (today + timedelta(days=DAYS[kind])).isoformat()}},
        "input": [{"type": {"text": "acknowledge-by"}, "valueDate": add_working_days(today, ACKNOWLEDGE_WORKING_DAYS).isoformat()}],
    }
    prepared = resources.prepare_write(store, doc, "Task", task_id)
    # A patient has no general Task scope: this service is the only way they write one, into their own record.
    with store.writing(policy.gate(ctx)) as uow:
        resources.write_prepared(uow, store, prepared, "Task", task_id, "POST", None)
        resources.flush_writes(uow)
    return task_id


def _tasks(store: Store, ctx: AccessContext, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
    page = search.search(store, ctx, "Task", [("code", f"{SYSTEM}|correction,{SYSTEM}|deletion"), *params, ("_count", "200")])
    return [jsonio.loads_stored(v.body or b"{}") for v, mode in page.entries if mode == "match"]


def of_patient(store: Store, ctx: AccessContext, patient_id: str) -> list[dict[str, Any]]:
    return sorted(_tasks(store, ctx, [("patient", patient_id)]), key=lambda t: t.get("authoredOn", ""), reverse=True)


def queue(store: Store, ctx: AccessContext) -> list[dict[str, Any]]:
    """Open requests of the patients the admin's facility cares for, oldest deadline first."""
    if ctx.kind != "staff" or ctx.role != "admin":
        raise FhirError(403, [Issue("forbidden", "data requests are answered by the facility admin")])
    open_ = _tasks(store, ctx, [("status", "requested,accepted")])
    return sorted(open_, key=lambda t: ((t.get("restriction") or {}).get("period") or {}).get("end", ""))


def answer(store: Store, ctx: AccessContext, task_id: str, accept: bool, reason: str) -> dict[str, Any]:
    """Accept or refuse with reasons; a deletion during the retention period can only be refused."""
    if ctx.kind != "staff" or ctx.role != "admin":
        raise FhirError(403, [Issue("forbidden", "data requests are answered by the facility admin")])
    words = " ".join((reason or "").split())
    if len(words) < 5:
        raise bad_request("give the reasons of the answer (at least 5 characters)", "note")
    seen = resources.read(store, ctx, "Task", task_id)
    doc = jsonio.loads_stored(seen.body or b"{}")
    if doc.get("status") not in ("requested", "accepted"):
        raise conflict("the request was answered already")
    kind = ((doc.get("code") or {}).get("coding") or [{}])[0].get("code")
    patient_id = ((doc.get("for") or {}).get("reference") or "/").split("/", 1)[1]
    if accept and kind == "deletion" and not deletion_outlook(store, patient_id).deletion_possible:
        raise conflict("medical records must be kept during the retention period: refuse with the reason")
    doc["status"] = "accepted" if accept else "rejected"
    doc["statusReason"] = {"text": words}
    doc["lastModified"] = format_instant(now_us())
    doc["owner"] = {"reference": f"Organization/{ctx.organization}"}
    resources.check_writable(ctx, "update", "Task", task_id)
    prepared = resources.prepare_write(store, doc, "Task", task_id)
    gate = policy.gate(ctx)
    with store.writing(gate) as uow:
        # The Task is the patient's (they wrote it), so the rule "only its writer changes it" would
        # refuse the answer. This workflow is the exception: the admin has just read the request
        # through the facility's own gate, and changes only its status, reason and owner.
        uow.access = Gate(None, creator_org=gate.creator_org, context=ctx)
        resources.update_in(uow, store, prepared, "Task", task_id, seen.version_id)  # a concurrent answer gets 412
        resources.flush_writes(uow)
    return doc
