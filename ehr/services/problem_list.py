"""The patient's lists kept as one list each (allergies, problems, current medicines), not re-created
per visit: an item is added once, then resolved, stopped or marked entered-in-error in place.

A change is a new version of the same resource, written by the facility that recorded it; an item
of a signed visit is changed by a signed amendment (the old version and its signature stay).
"""

from __future__ import annotations

from typing import Any

from ehr.crypto.signing_keys import FacilityKeys
from ehr.fhir import corrections, jsonio
from ehr.fhir.outcomes import bad_request
from ehr.fhir.terminology import ALLERGY_CLINICAL, ALLERGY_VERIFICATION, CONDITION_CLINICAL
from ehr.services import chart, policy, resources, signing
from ehr.services.common import format_instant
from ehr.services.context import AccessContext
from ehr.store import repository
from ehr.store.keys import now_us
from ehr.store.runtime import Store

LIST_TYPES = ("AllergyIntolerance", "Condition", "MedicationRequest")
ACTIONS = ("resolve", "error")


def _changed(doc: dict[str, Any], action: str) -> dict[str, Any]:
    if action == "error":
        return corrections.entered_in_error(doc)
    out = {k: v for k, v in doc.items() if k != "meta"}
    kind = out.get("resourceType")
    if kind == "Condition":
        out["clinicalStatus"] = {"coding": [{"system": CONDITION_CLINICAL, "code": "resolved"}]}
        out.setdefault("abatementDateTime", format_instant(now_us()))
    elif kind == "AllergyIntolerance":
        out["clinicalStatus"] = {"coding": [{"system": ALLERGY_CLINICAL, "code": "resolved"}]}
    else:  # a medicine the patient no longer takes
        out["status"] = "stopped"
    return out


def change(store: Store, ctx: AccessContext, keys: FacilityKeys, resource_type: str, logical_id: str, action: str,
           reason: str | None = None) -> None:
    """Resolve (a problem, an allergy), stop (a medicine) or mark entered-in-error one list item."""
    if resource_type not in LIST_TYPES or action not in ACTIONS:
        raise bad_request("only allergies, problems and medicines are changed here", "action")
    doc = jsonio.loads_stored(resources.read(store, ctx, resource_type, logical_id).body or b"{}")
    doc["id"] = logical_id
    new = _changed(doc, action)
    with store.reading(policy.gate(ctx)) as uow:
        current = repository.current(uow, resource_type, logical_id)
    if current is not None and current.signed_by:
        signing.amend(store, ctx, keys, resource_type, logical_id, new, reason=reason or _REASONS[action])
    else:
        resources.update(store, ctx, resource_type, logical_id, new)


_REASONS = {"resolve": "Cập nhật danh sách: đã khỏi / đã ngừng", "error": "Cập nhật danh sách: nhập nhầm"}


def add_allergy(store: Store, ctx: AccessContext, patient_id: str, substance: str, criticality: str | None,
                reaction: str | None, recorder: dict[str, str] | None) -> bool:
    """Add an allergy to the patient's list unless it is there already (case and accents ignored)."""
    if chart.lists(store, ctx, patient_id).has_allergy(substance):
        return False
    doc: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {"coding": [{"system": ALLERGY_CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": ALLERGY_VERIFICATION, "code": "confirmed"}]},
        "code": {"text": substance}, "patient": {"reference": f"Patient/{patient_id}"}, "recordedDate": format_instant(now_us()),
    }
    if criticality:
        doc["criticality"] = criticality
    if reaction:
        doc["reaction"] = [{"manifestation": [{"text": reaction}]}]
    if recorder:
        doc["recorder"] = recorder
    resources.create(store, ctx, doc)
    return True
