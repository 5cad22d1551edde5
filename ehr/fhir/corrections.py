"""Marking a clinic record entered-in-error, the FHIR way for each type (pure functions).

A cancelled visit and the items an edit replaces are never deleted: they stay in the record,
marked `entered-in-error`, so staff see what was corrected and the history keeps every version;
the patient's health book leaves them out (`hidden`).
"""

from __future__ import annotations

import copy
from typing import Any

from ehr.fhir.terminology import ALLERGY_VERIFICATION, CONDITION_VERIFICATION

ERROR = "entered-in-error"
# Types whose `status` takes entered-in-error (R4 value sets of each).
_STATUS = frozenset({"Encounter", "Observation", "MedicationRequest", "Immunization", "Procedure", "FamilyMemberHistory",
                     "Composition", "Appointment", "DiagnosticReport", "MedicationStatement", "ServiceRequest"})
# Types that say it in verificationStatus; their clinicalStatus must then be absent (con-5, ait-2).
_VERIFICATION = {"Condition": CONDITION_VERIFICATION, "AllergyIntolerance": ALLERGY_VERIFICATION}


def entered_in_error(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of the resource marked entered-in-error (without its meta, ready for a PUT)."""
    out = copy.deepcopy(doc)
    out.pop("meta", None)
    rtype = out.get("resourceType", "")
    if rtype in _STATUS:
        out["status"] = ERROR
    elif rtype in _VERIFICATION:
        out["verificationStatus"] = {"coding": [{"system": _VERIFICATION[rtype], "code": ERROR}]}
        out.pop("clinicalStatus", None)
    return out


def is_error(doc: dict[str, Any]) -> bool:
    if doc.get("status") == ERROR:
        return True
    codings = (doc.get("verificationStatus") or {}).get("coding") or []
    return any(isinstance(c, dict) and c.get("code") == ERROR for c in codings)


def hidden(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The record without what was entered in error."""
    return [d for d in docs if not is_error(d)]
