"""Patient/$everything: the patient's whole compartment plus the Practitioners, Organizations,
Locations and Medications its resources reference; `_since`, `_type`, `_count` with paging.

Order: the Patient first, then by type and id. Page links carry an encrypted token only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ehr.fhir.outcomes import bad_request
from ehr.fhir.resources import SERVED_TYPES
from ehr.services.common import check_id, parse_instant
from ehr.services.context import AccessContext
from ehr.services import auditing, policy
from ehr.services.policy import authorize
from ehr.services.resources import read_live
from ehr.store import access, compartments, repository
from ehr.store.repository import StoredVersion
from ehr.store.runtime import CursorError, Store

SUPPORT_TYPES = ["Practitioner", "PractitionerRole", "Organization", "Location", "Medication"]
DEFAULT_COUNT, MAX_COUNT = 100, 1000


@dataclass
class EverythingPage:
    entries: list[StoredVersion]
    total: int | None
    next_token: str | None


def _options(store: Store, params: dict[str, str | None], scope: str) -> tuple[int | None, list[str] | None, int, tuple[str, str] | None, dict[str, Any]]:
    token = params.get("_page")
    if token:
        try:
            payload = store.open_cursor(token)
            if payload.get("scope") != scope:
                raise CursorError("another operation")
            params = dict(payload["p"])  # type: ignore[arg-type]
            after = tuple(payload["a"]) if payload.get("a") else None  # type: ignore[arg-type]
        except (CursorError, KeyError, TypeError, ValueError):
            raise bad_request("the paging token is not valid or has expired", "_page") from None
    else:
        after = None
    since = parse_instant(params["_since"], "_since") if params.get("_since") else None
    types = [t.strip() for t in (params.get("_type") or "").split(",") if t.strip()] or None
    raw = params.get("_count")
    if raw is not None and not str(raw).isdigit():
        raise bad_request("_count must be a non-negative integer", "_count")
    count = min(int(raw), MAX_COUNT) if raw else DEFAULT_COUNT
    return since, types, max(count, 1), after, {k: v for k, v in params.items() if k in ("_since", "_type", "_count") and v}  # type: ignore[return-value]


def patient_everything(store: Store, ctx: AccessContext, patient_id: str, params: dict[str, str | None]) -> EverythingPage:
    check_id(patient_id)
    authorize(ctx, "read", "Patient")
    since, types, count, after, kept = _options(store, params, f"Patient/{patient_id}")
    gate = policy.gate(ctx)
    with store.reading(gate) as uow:
        read_live(uow, store, "Patient", patient_id, "everything")  # 404 / 410 when it is not there (or hidden)
        keys = compartments.members(uow, patient_id, since, types)
        keys |= compartments.referenced(uow, sorted(keys | {("Patient", patient_id)}), [t for t in SUPPORT_TYPES if not types or t in types], since)
        patient = ("Patient", patient_id)
        if not types or "Patient" in types:
            current = repository.current(uow, "Patient", patient_id)
            if current and (since is None or current.last_updated >= since):
                keys.add(patient)
        # Only what the principal may read: types its scopes cover, records its gate lets through
        # (a client without consent sees what it wrote).
        keys = access.visible_keys(uow, gate.restriction, sorted(k for k in keys if policy.may(ctx, "read", k[0])))
        ordered = sorted(keys, key=lambda k: (k != patient, k))
        if after is not None:
            position = (after != patient, after)
            ordered = [k for k in ordered if (k != patient, k) > position]
        page = ordered[:count]
        read = repository.read_many(uow, store.keys, page)
    more = len(ordered) > count
    token = store.sign_cursor({"scope": f"Patient/{patient_id}", "p": kept, "a": list(page[-1])}) if more and page else None
    entries = [read[k] for k in page if k in read]
    auditing.disclosed(store, ctx, "everything", resource_type="Patient", logical_id=patient_id, versions=entries, patients=[patient_id])
    return EverythingPage(entries, len(keys) if after is None else None, token)


def all_patients_everything(store: Store, ctx: AccessContext, params: dict[str, str | None]) -> EverythingPage:
    """Type-level Patient/$everything: for system clients allowed to read every patient."""
    authorize(ctx, "read", "Patient")
    if ctx.kind not in ("system", "operator", "server", "anonymous"):
        raise bad_request("type-level Patient/$everything is for system clients")
    since, types, count, after, kept = _options(store, params, "Patient")
    with store.reading(policy.gate(ctx)) as uow:
        readable = [t for t in (types or SERVED_TYPES) if policy.may(ctx, "read", t)]
        keys = compartments.all_patients_page(uow, SUPPORT_TYPES, since, readable, after, count + 1) if readable else []
        read = repository.read_many(uow, store.keys, keys[:count])
    token = store.sign_cursor({"scope": "Patient", "p": kept, "a": list(keys[count - 1])}) if len(keys) > count else None
    entries = [read[k] for k in keys[:count] if k in read]
    auditing.disclosed(store, ctx, "everything", resource_type="Patient", versions=entries)
    return EverythingPage(entries, None, token)
