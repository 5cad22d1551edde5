"""What ends when a patient narrows a consent: the exports an organization made under it.

A consent gives an organization reads for as long as it is active; reads already copied into a
Bulk Data export file would outlive it. So when a Consent write (revocation, a shorter period,
fewer actors, deletion) takes an organization's grant away, that organization's export jobs
whose files hold the patient are cancelled in the same transaction (issue 20, finding 9).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ehr.fhir import dates, jsonio
from ehr.services import export
from ehr.store import repository
from ehr.store.runtime import Store
from ehr.store.uow import UnitOfWork

EVERY = "*"  # a consent with no actor grants every organization


def granted(doc: dict[str, Any] | None, now: datetime | None = None) -> set[str]:
    """Organization ids this Consent grants now (EVERY for all); empty when it grants nothing."""
    if not doc or doc.get("status") != "active":
        return set()
    provision = doc.get("provision") or {}
    if provision.get("type", "permit") != "permit":
        return set()
    end = (provision.get("period") or {}).get("end")
    if end:
        try:
            _low, high = dates.value_range(str(end))
        except dates.DateFormatError:
            return set()
        if high < int((now or datetime.now(timezone.utc)).timestamp() * 1_000_000):
            return set()
    orgs = {
        str((a.get("reference") or {}).get("reference", "")).removeprefix("Organization/")
        for a in provision.get("actor") or () if str((a.get("reference") or {}).get("reference", "")).startswith("Organization/")
    }
    return orgs or {EVERY}


def previous_doc(uow: UnitOfWork, store: Store, logical_id: str) -> dict[str, Any] | None:
    try:
        stored = repository.read_current(uow, store.keys, "Consent", logical_id)
    except repository.Invisible:
        return None
    return jsonio.loads_stored(stored.body) if stored is not None and stored.body else None


def consent_changed(uow: UnitOfWork, patient_id: str | None, before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """Cancel the exports of organizations that `before` granted and `after` does not."""
    if patient_id is None:
        return []
    was, now = granted(before), granted(after)
    lost = was - now
    if not lost or now >= {EVERY}:
        return []
    if EVERY in lost:  # every organization lost it, but those the consent still names
        return export.cancel_for_revoked(uow, patient_id, None, keep=now)
    return export.cancel_for_revoked(uow, patient_id, lost)
