"""The facility's queue of the day: arrival at the desk, calling, starting and finishing visits.

- `arrive` (from `care.check_in`): the patient gets an `arrived` Encounter with the next queue
  number of the facility for the clinic's day (1, 2, 3...), or keeps the unfinished Encounter
  the facility already has with them today (checking in twice queues once).
- `call_next`: the lowest-numbered waiting patient is called (status `triaged`, "Đã gọi").
- `start`, `finish`, `cancel`: `in-progress`, `finished` (period.end set), `cancelled` (left
  without a visit). Each move appends the state left to `statusHistory` (ehr.fhir.queue).
- `today`: the rows of the today page.

Every write goes through `ehr.services.resources` inside the caller's own access gate (validation,
policy, audit as for the FHIR API). Front-desk staff already may create and update Encounters
(`policy.ROLE_SCOPES`), so no wider context is used; the queue adds its own role rules on top:
receptionists check in, call and cancel; doctors and nurses call, start and finish. Facility
admins check patients in without queueing them (they have no Encounter rights).

Concurrency: arrivals and calls of one facility and day take one lock (`write_locks`, the
mechanism conditional creates use), so numbers are never shared and two desks calling at once call
two patients; every move is an If-Match update of the version it was decided on, under the row's
lock, so two clicks on the same row cannot both win (the loser gets `QueueError` "changed").
Signed Encounters are final (`signing.sign_visit` finishes them itself): moves answer "signed".
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from ehr.fhir import jsonio
from ehr.fhir import queue as fq
from ehr.fhir.healthbook import name_of
from ehr.fhir.dates import DEFAULT_ZONE
from ehr.fhir.outcomes import FhirError, Issue
from ehr.services import indexing, policy, resources, search
from ehr.services.context import AccessContext
from ehr.store import index, repository
from ehr.store.index import TokenRow
from ehr.store.keys import now_us
from ehr.store.runtime import Store
from ehr.store.uow import UnitOfWork

ARRIVE_ROLES = ("receptionist", "doctor", "nurse")
CALL_ROLES = ("receptionist", "doctor", "nurse")
VISIT_ROLES = ("doctor", "nurse")
CANCEL_ROLES = ("receptionist",)
_ISSUE = {403: "forbidden", 404: "not-found", 409: "conflict", 412: "conflict"}


class QueueError(FhirError):
    """A refused queue action; `reason` (role, not-found, signed, status, changed) picks the page's message."""

    def __init__(self, status: int, reason: str, diagnostics: str) -> None:
        super().__init__(status, [Issue(_ISSUE.get(status, "processing"), diagnostics)])
        self.reason = reason


def _facility(ctx: AccessContext, roles: tuple[str, ...], action: str) -> str:
    if ctx.kind != "staff" or not ctx.organization or ctx.role not in roles:
        raise QueueError(403, "role", f"{action} is for {', '.join(roles)} staff of a facility")
    return ctx.organization


def queues(ctx: AccessContext) -> bool:
    """Does a check-in by this context put the patient in the queue?"""
    return ctx.kind == "staff" and bool(ctx.organization) and ctx.role in ARRIVE_ROLES and policy.may(ctx, "create", "Encounter")


def _local(now: int | None) -> datetime:
    return datetime.fromtimestamp((now if now is not None else now_us()) / 1_000_000, tz=DEFAULT_ZONE).replace(microsecond=0)


def _day_lock(store: Store, system: str) -> bytes:
    return store.blind.lock_key("Encounter", "queue", system)


def _docs(uow: UnitOfWork, store: Store, ids: list[str]) -> dict[str, dict[str, Any]]:
    found = repository.read_many(uow, store.keys, [("Encounter", i) for i in ids])
    return {rid: jsonio.loads_stored(v.body or b"{}") for (_, rid), v in found.items()}


def _day_params(day: date) -> list[tuple[str, str]]:
    # Started on the clinic's day: `sa` the day before keeps the start on or after its midnight,
    # `lt` the day after before the next one (dates without a zone are read in the clinic's zone).
    return [("date", f"sa{day - timedelta(days=1)}"), ("date", f"lt{day + timedelta(days=1)}")]


def _open_today(uow: UnitOfWork, store: Store, organization: str, patient_id: str, day: date) -> str | None:
    """The facility's unfinished Encounter with the patient that started today (queued or not)."""
    ids = search.find_ids(uow, store, "Encounter", [
        ("subject", f"Patient/{patient_id}"), ("service-provider", f"Organization/{organization}"), *_day_params(day)], 50)
    docs = [(rid, doc) for rid, doc in _docs(uow, store, ids).items() if doc.get("status") in fq.OPEN]
    docs.sort(key=lambda item: (fq.number_of(item[1], store.systems.base) or 0, str((item[1].get("period") or {}).get("start"))))
    return docs[0][0] if docs else None


def _number_taken(uow: UnitOfWork, store: Store, system: str, number: int) -> bool:
    # Looked up in the index itself, not through the caller's gate: an Encounter the desk can no
    # longer see (the patient ended the facility's care) still holds its number.
    probe = {"resourceType": "Encounter", "identifier": [{"system": system, "value": str(number)}]}
    rows = [t for t in indexing.rows_for(store, "Encounter", probe, []).tokens if t.param == "identifier" and t.system == system]
    return any(index.token_row_holders(uow, "Encounter", TokenRow(t.param, t.system, t.code, t.hash)) for t in rows)


def _next_number(uow: UnitOfWork, store: Store, system: str) -> int:
    given = search.find_ids(uow, store, "Encounter", [("identifier", f"{system}|")], 100_000)
    number = len(given) + 1
    while _number_taken(uow, store, system, number):
        number += 1
    return number


def arrive(store: Store, ctx: AccessContext, patient_id: str, now: int | None = None) -> str:
    """The patient arrived at the desk: the id of their `arrived` Encounter with a new queue
    number, or of the facility's unfinished Encounter with them today (see the module doc).
    `now` (µs) is the arrival time, default the present."""
    organization = _facility(ctx, ARRIVE_ROLES, "queue.arrive")
    resources.check_writable(ctx, "create", "Encounter")
    arrived = _local(now)
    system = fq.system(store.systems.base, organization, arrived.date())
    with store.writing(policy.gate(ctx)) as uow:
        # One lock per facility and day: arrivals queue behind each other, so each one sees the
        # numbers (and the patient's Encounter) the previous ones wrote.
        repository.lock(uow, [_day_lock(store, system)])
        existing = _open_today(uow, store, organization, patient_id, arrived.date())
        if existing:
            return existing
        logical_id = str(uuid.uuid4())
        doc = fq.arrival(patient_id, organization, _next_number(uow, store, system), arrived, store.systems.base)
        prepared = resources.prepare_write(store, doc, "Encounter", logical_id)
        written = resources.create_in(uow, store, prepared, "Encounter", logical_id, None)
        resources.flush_writes(uow)
    return written.version.logical_id


def _move_in(uow: UnitOfWork, store: Store, organization: str, encounter_id: str, status: str, at: datetime,
             version: int | None) -> int:
    """Move one Encounter to `status` in this unit of work; its new version."""
    previous = repository.current(uow, "Encounter", encounter_id, for_update=True)  # the row's lock first
    if previous is None or previous.deleted:
        raise QueueError(404, "not-found", f"Encounter/{encounter_id} is not known")
    try:
        found = resources.read_live(uow, store, "Encounter", encounter_id, "update")
    except FhirError:
        raise QueueError(404, "not-found", f"Encounter/{encounter_id} is not known") from None
    doc = jsonio.loads_stored(found.body or b"{}")
    if (doc.get("serviceProvider") or {}).get("reference") != f"Organization/{organization}":
        raise QueueError(404, "not-found", f"Encounter/{encounter_id} is not in this facility's queue")
    if previous.signed_by:
        raise QueueError(409, "signed", "the visit is signed: its Encounter cannot change (corrections are signed amendments)")
    if version is not None and version != previous.version_id:
        raise QueueError(412, "changed", "the Encounter was changed by someone else since the page was shown")
    try:
        moved = fq.transition(doc, status, at)
    except fq.TransitionError:
        raise QueueError(409, "status", f"an Encounter with status {doc.get('status')} cannot become {status}") from None
    prepared = resources.prepare_write(store, moved, "Encounter", encounter_id)
    written = resources.update_in(uow, store, prepared, "Encounter", encounter_id, previous.version_id)
    return written.version.version_id


def _move(store: Store, ctx: AccessContext, encounter_id: str, status: str, roles: tuple[str, ...], action: str,
          version: int | None, now: int | None) -> int:
    organization = _facility(ctx, roles, action)
    resources.check_writable(ctx, "update", "Encounter", encounter_id)
    with store.writing(policy.gate(ctx)) as uow:
        new_version = _move_in(uow, store, organization, encounter_id, status, _local(now), version)
        resources.flush_writes(uow)
    return new_version


def call_next(store: Store, ctx: AccessContext, now: int | None = None) -> str | None:
    """Call the lowest-numbered waiting patient of today's queue; their Encounter id, or None
    when nobody is waiting."""
    organization = _facility(ctx, CALL_ROLES, "queue.call")
    resources.check_writable(ctx, "update", "Encounter")
    at = _local(now)
    system = fq.system(store.systems.base, organization, at.date())
    with store.writing(policy.gate(ctx)) as uow:
        # The day's lock: two desks calling at once call two different patients.
        repository.lock(uow, [_day_lock(store, system)])
        docs = _docs(uow, store, search.find_ids(uow, store, "Encounter", [("identifier", f"{system}|")], 100_000))
        waiting = sorted((fq.number_of(doc, store.systems.base) or 0, rid) for rid, doc in docs.items() if doc.get("status") in fq.WAITING)
        for _, rid in waiting:
            try:
                _move_in(uow, store, organization, rid, fq.CALLED, at, None)
            except QueueError as exc:
                if exc.reason in ("status", "signed", "not-found"):
                    continue  # moved meanwhile (started or cancelled from its row): the next one
                raise
            resources.flush_writes(uow)
            return rid
    return None


def start(store: Store, ctx: AccessContext, encounter_id: str, version: int | None = None, now: int | None = None) -> int:
    """The visit begins (`in-progress`); the Encounter's new version."""
    return _move(store, ctx, encounter_id, "in-progress", VISIT_ROLES, "queue.start", version, now)


def finish(store: Store, ctx: AccessContext, encounter_id: str, version: int | None = None, now: int | None = None) -> int:
    """The visit ends (`finished`, period.end set); the Encounter's new version."""
    return _move(store, ctx, encounter_id, "finished", VISIT_ROLES, "queue.finish", version, now)


def cancel(store: Store, ctx: AccessContext, encounter_id: str, version: int | None = None, now: int | None = None) -> int:
    """The patient left without a visit (`cancelled`); the Encounter's new version."""
    return _move(store, ctx, encounter_id, "cancelled", CANCEL_ROLES, "queue.cancel", version, now)


@dataclass(frozen=True)
class Row:
    encounter_id: str
    version: int
    patient_id: str
    patient_name: str
    number: int | None  # None: a visit recorded without check-in
    status: str
    group: str  # waiting, in-progress, finished, cancelled
    arrived: datetime | None  # in the clinic's zone
    started: datetime | None
    finished: datetime | None  # finished or cancelled
    waiting_minutes: int | None  # until the visit started (or ended), or until now while waiting
    reason: str


def _moment(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=DEFAULT_ZONE)).astimezone(DEFAULT_ZONE)


def _row(version: repository.StoredVersion, doc: dict[str, Any], patients: dict[str, dict[str, Any]], base: str, now: datetime) -> Row:
    pid = str((doc.get("subject") or {}).get("reference") or "/").split("/", 1)[-1]
    when = fq.times(doc)
    arrived, started, ended = _moment(when.arrived), _moment(when.started), _moment(when.ended)
    status = str(doc.get("status") or "unknown")
    group = fq.GROUP_OF.get(status, "waiting")
    until = started or ended or (now if group == "waiting" else None)
    waiting = max(0, int((until - arrived).total_seconds() // 60)) if arrived and until else None
    return Row(version.logical_id, version.version_id, pid, name_of(patients.get(pid, {})), fq.number_of(doc, base), status, group,
               arrived, started, ended, waiting, str(((doc.get("reasonCode") or [{}])[0] or {}).get("text") or ""))


def today(store: Store, ctx: AccessContext, day: date, now: int | None = None) -> list[Row]:
    """The facility's Encounters that started on `day` (the clinic's date), queued first by
    number, then the visits recorded without check-in by start. An audited search."""
    if not (ctx.kind == "staff" and ctx.organization and policy.may(ctx, "search", "Encounter")):
        return []
    params = [("service-provider", f"Organization/{ctx.organization}"), *_day_params(day), ("_count", "1000"),
              ("_include", "Encounter:subject"), ("_sort", "date")]
    entries: list[tuple[repository.StoredVersion, str]] = []
    page = search.search(store, ctx, "Encounter", params)
    entries += page.entries
    while page.next_token:
        page = search.search(store, ctx, "Encounter", [("_page", page.next_token)])
        entries += page.entries
    patients = {v.logical_id: jsonio.loads_stored(v.body or b"{}") for v, mode in entries if v.resource_type == "Patient"}
    moment = _local(now)
    rows = [_row(v, jsonio.loads_stored(v.body or b"{}"), patients, store.systems.base, moment)
            for v, mode in entries if mode == "match" and v.resource_type == "Encounter"]
    far = datetime.max.replace(tzinfo=DEFAULT_ZONE)
    rows.sort(key=lambda r: (r.number is None, r.number or 0, r.arrived or far))
    return rows
