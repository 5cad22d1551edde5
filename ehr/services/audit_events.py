"""The audit trail read back as FHIR AuditEvents (IHE BALP shape): facility admins see their
facility's events, patients the events about their own record (and those they represent), systems
with an AuditEvent scope their organization's events, operators everything.

Searches: `patient`, `date` (ge/gt/le/lt/eq), `action` (our action code, e.g. read, break-glass),
`_count`; newest first; the next page travels as an encrypted token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from ehr.fhir import auditevent, dates
from ehr.fhir.outcomes import bad_request, not_found
from ehr.fhir.resources import is_valid_id
from ehr.services import auditing, policy
from ehr.services.context import AccessContext
from ehr.services.policy import authorize
from ehr.store import audit
from ehr.store.access import INTERNAL
from ehr.store.runtime import CursorError, Store
from ehr.store.schema import representations

MAX_COUNT = 200


@dataclass(frozen=True)
class Scope:
    organization: str | None = None  # only events of this organization
    patients: list[str] | None = None  # only events about these patients


def _scope(store: Store, ctx: AccessContext) -> Scope:
    if ctx.unrestricted:
        return Scope()
    if ctx.kind == "patient" and ctx.on_behalf_of:
        with store.reading(INTERNAL) as uow:
            represented = [r[0] for r in uow.execute(select(representations.c.patient_id).where(representations.c.account_id == ctx.account_id))]
        return Scope(patients=[ctx.on_behalf_of, *represented])
    if ctx.organization:
        return Scope(organization=ctx.organization)
    return Scope(patients=[])


@dataclass
class EventPage:
    events: list[dict[str, Any]]
    next_token: str | None


def search(store: Store, ctx: AccessContext, params: dict[str, list[str]]) -> EventPage:
    authorize(ctx, "search", "AuditEvent")
    scope = _scope(store, ctx)
    token = (params.get("_page") or [None])[0]
    before = None
    if token:
        try:
            payload = store.open_cursor(token)
            if payload.get("scope") != "AuditEvent":
                raise CursorError("another search")
            params, before = payload["q"], int(payload["b"])  # type: ignore[assignment, call-overload]
        except (CursorError, KeyError, TypeError, ValueError):
            raise bad_request("the paging token is not valid or has expired", "_page") from None
    unknown = set(params) - {"patient", "date", "action", "_count", "_page", "_format"}
    if unknown:
        raise bad_request(f"AuditEvent search supports patient, date, action and _count, not {sorted(unknown)[0][:64]}", sorted(unknown)[0][:64])
    count = (params.get("_count") or ["50"])[0]
    if not count.isdigit():
        raise bad_request("_count must be a non-negative integer", "_count")
    limit = max(1, min(int(count), MAX_COUNT))
    patient = None
    if params.get("patient"):
        patient = params["patient"][0].removeprefix("Patient/")
        if not is_valid_id(patient):
            raise bad_request("patient must be a Patient id or Patient/[id]", "patient")
    since, until = _dates(params.get("date") or [])
    wanted = scope.patients
    if patient and wanted is not None:
        wanted = [patient] if patient in wanted else []
    if patient and scope.organization and not _visible_patients(store, ctx, {patient}):
        wanted = []  # its own refused attempts would tell the caller whose record it asked for
    with store.reading(INTERNAL) as uow:
        rows = [] if wanted == [] else audit.recent(
            uow, store.keys, action=(params.get("action") or [None])[0], limit=limit + 1, patient=patient if wanted is None else None,
            organization=scope.organization, before_seq=before, patients_any=wanted, since_us=since, until_us=until,
        )
    more = len(rows) > limit
    rows = _redacted(store, ctx, scope, rows[:limit])
    events = [auditevent.to_fhir(r) for r in rows]
    patients = sorted({p for r in rows for p in audit.subjects_of(r)})
    auditing.disclosed(store, ctx, "search", resource_type="AuditEvent", patients=patients)
    clean = {k: v for k, v in params.items() if k not in ("_page", "_format")}
    next_token = store.sign_cursor({"scope": "AuditEvent", "q": clean, "b": rows[-1]["seq"]}) if more and rows else None
    return EventPage(events, next_token)


def _visible_patients(store: Store, ctx: AccessContext, patient_ids: set[str]) -> set[str]:
    gate = policy.gate(ctx)
    with store.reading(gate) as uow:
        return {p for p in patient_ids if policy.patient_visible(uow, gate, p)}


def _redacted(store: Store, ctx: AccessContext, scope: Scope, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An organization's own events name only patients it may see now.

    A refused read of a hidden resource is recorded under that resource's patient (so the patient
    sees the attempt); shown to the caller as is, the event would name the patient: an oracle.
    """
    if scope.organization is None or ctx.unrestricted:
        return rows
    named = {p for r in rows for p in audit.subjects_of(r)}
    shown = _visible_patients(store, ctx, named) if named else set()
    out = []
    for row in rows:
        if set(audit.subjects_of(row)) <= shown:
            out.append(row)
            continue
        row = dict(row)
        row["compartment"] = row["compartment"] if row.get("compartment") in shown else None
        row["patients"] = " ".join(p for p in (row.get("patients") or "").split() if p in shown)
        out.append(row)
    return out


def _dates(values: list[str]) -> tuple[int | None, int | None]:
    since = until = None
    for raw in values:
        prefix, value = dates.split_prefix(raw)
        try:
            low, high = dates.value_range(value)
        except dates.DateFormatError:
            raise bad_request("date: not a valid date or instant", "date") from None
        if prefix in ("ge", "gt", "sa"):
            since = low if prefix == "ge" else high
        elif prefix in ("le", "lt", "eb"):
            until = high if prefix == "le" else low
        elif prefix == "eq":
            since, until = low, high
        else:
            raise bad_request(f"date: prefix {prefix} is not supported here", "date")
    return since, until


def read(store: Store, ctx: AccessContext, event_id: str) -> dict[str, Any]:
    authorize(ctx, "read", "AuditEvent")
    if not event_id.isdigit() or len(event_id) > 18:
        raise not_found(f"AuditEvent/{event_id[:64]} is not known")
    scope = _scope(store, ctx)
    with store.reading(INTERNAL) as uow:
        rows = audit.recent(uow, store.keys, limit=1, seq=int(event_id), organization=scope.organization, patients_any=scope.patients)
    rows = _redacted(store, ctx, scope, rows)
    if not rows:
        raise not_found(f"AuditEvent/{event_id} is not known")
    auditing.disclosed(store, ctx, "read", resource_type="AuditEvent", logical_id=event_id, patients=sorted(audit.subjects_of(rows[0])))
    return auditevent.to_fhir(rows[0])
