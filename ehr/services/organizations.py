"""What a facility may change about an Organization (directory data every facility reads).

Patients choose whom to share their record with by an Organization's name and facility code
(mã cơ sở KCB), so those two are an operator's to set: a facility that could rename itself, or
take another's code, could phish a consent meant for someone else. A facility keeps its other
details (telecom, address, contacts) up to date itself, and may add Organizations without a
facility code (a partner laboratory, a referring practice); the patient's sharing directory lists
only Organizations with a facility code, so such an entry cannot pose as a registered facility.
Facility codes are unique among live Organizations, whoever writes them.
"""

from __future__ import annotations

from typing import Any

from ehr.fhir import jsonio
from ehr.fhir.outcomes import Issue, conflict
from ehr.services import indexing, policy
from ehr.services.context import AccessContext
from ehr.store import index, repository
from ehr.store.runtime import Store
from ehr.store.uow import UnitOfWork


def facility_codes(store: Store, doc: dict[str, Any]) -> list[str]:
    return sorted({
        "".join(str(i.get("value") or "").split())
        for i in doc.get("identifier") or () if isinstance(i, dict) and i.get("system") == store.systems.facility and i.get("value")
    })


def _forbid(logical_id: str, text: str, at: str) -> policy.Denied:
    return policy.Denied(403, [Issue("forbidden", text, expression=(at,))], "update", "Organization", logical_id)


def check_organization(uow: UnitOfWork, store: Store, doc: dict[str, Any], logical_id: str, previous: Any) -> None:
    """Raise unless this write of an Organization keeps to the directory rules above."""
    codes = facility_codes(store, doc)
    ctx: AccessContext | None = uow.access.context if uow.access is not None else None
    if ctx is not None and not ctx.unrestricted:
        before: dict[str, Any] = {}
        if previous is not None and not previous.deleted:
            stored = repository.read_current(uow, store.keys, "Organization", logical_id)
            before = jsonio.loads_stored(stored.body or b"{}") if stored is not None else {}
        if facility_codes(store, before) != codes:
            raise _forbid(logical_id, "a facility code (mã cơ sở KCB) is set by the operators of this server", "Organization.identifier")
        renamed = previous is not None and not previous.deleted and str(before.get("name") or "") != str(doc.get("name") or "")
        if renamed:
            raise _forbid(logical_id, "an Organization's name is set by the operators of this server", "Organization.name")
    for code in codes:
        repository.lock(uow, [store.blind.lock_key("Organization", "identifier", code)])
        rows = indexing.rows_for(store, "Organization", {"resourceType": "Organization", "identifier": [
            {"system": store.systems.facility, "value": code}]}, [])
        wanted = [t for t in rows.tokens if t.param == "identifier" and (t.code or t.hash)]
        holders = set().union(*(index.token_row_holders(uow, "Organization", t) for t in wanted)) if wanted else set()
        if holders - {logical_id}:
            raise conflict("another Organization already holds this facility code", "Organization.identifier")
