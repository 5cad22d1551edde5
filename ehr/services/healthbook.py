"""The patient's health book: their whole record read once through Patient/$everything with the
patient's own access context, shaped by `ehr.fhir.healthbook` into the four groups of
QĐ 31/QĐ-BYT.

Whose book: a patient account reads its own record and those of the patients it legally
represents (a child, a ward). Every call names the patient; `for_patient` answers 404, exactly
as for a record that does not exist, for anyone else, and the store's gate would refuse anyway.
Because everything goes through the same services as the FHIR API, the policy, the encryption
and the audit trail apply unchanged: each page view is one `everything` record in the patient's
access log.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import quote

from sqlalchemy import select

from ehr.fhir import bundles as bundle_bytes
from ehr.fhir import healthbook as hb
from ehr.fhir import visit as visit_docs
from ehr.fhir import jsonio
from ehr.fhir.outcomes import Issue, not_found
from ehr.fhir.resources import is_valid_id
from ehr.services import auditing, everything, search
from ehr.services.common import now_instant
from ehr.services.context import AccessContext
from ehr.services.policy import Denied
from ehr.store.access import INTERNAL
from ehr.store.repository import StoredVersion
from ehr.store.runtime import Store
from ehr.store.schema import representations

PAGE = 1000


def represented(store: Store, ctx: AccessContext) -> list[str]:
    """Ids of the patients this patient account represents (recorded by clinic admins)."""
    if ctx.kind != "patient" or not ctx.account_id:
        return []
    with store.reading(INTERNAL) as uow:
        rows = uow.execute(select(representations.c.patient_id).where(representations.c.account_id == ctx.account_id))
        return sorted({str(r[0]) for r in rows})


def for_patient(store: Store, ctx: AccessContext, patient_id: str) -> AccessContext:
    """The context to read `patient_id`'s book with (dependants filled in): the patient's own
    record or one they represent; anything else is 404, like a record that does not exist."""
    if ctx.kind != "patient" or not ctx.on_behalf_of:
        raise Denied(403, [Issue("forbidden", "the health book is for patients")], "healthbook")
    dependants = represented(store, ctx)
    if patient_id != ctx.on_behalf_of and patient_id not in dependants:
        if is_valid_id(patient_id):
            auditing.event(store, ctx, "read", "denied", resource_type="Patient", logical_id=patient_id)
        raise not_found("this health book is not known")
    return replace(ctx, dependants=frozenset(dependants))


def record(store: Store, ctx: AccessContext, patient_id: str) -> list[StoredVersion]:
    """Every resource of the record, all pages of Patient/$everything."""
    ctx = for_patient(store, ctx, patient_id)
    out: list[StoredVersion] = []
    params: dict[str, str | None] = {"_count": str(PAGE)}
    while True:
        page = everything.patient_everything(store, ctx, patient_id, params)
        out += page.entries
        if not page.next_token:
            return out
        params = {"_page": page.next_token}


def book(store: Store, ctx: AccessContext, patient_id: str, now: datetime | None = None) -> hb.Book:
    docs = [jsonio.loads_stored(v.body) for v in record(store, ctx, patient_id) if v.body]
    # The patient reads a clinic visit once it is signed, never a draft as if it were final.
    return hb.build(patient_id, visit_docs.without_drafts(docs), now or datetime.now(hb.VN))


def visit(store: Store, ctx: AccessContext, patient_id: str, encounter_id: str) -> tuple[hb.Book, hb.Visit]:
    """The book and one of its visits; 404 when the visit is not in this patient's record."""
    found = book(store, ctx, patient_id)
    one = found.visit(encounter_id)
    if one is None:
        raise not_found("this visit is not in the health book")
    return found, one


@dataclass(frozen=True)
class Person:
    patient_id: str
    name: str
    own: bool


def people(store: Store, ctx: AccessContext) -> list[Person]:
    """The signed-in patient and those they represent, with names (for switching books)."""
    if ctx.kind != "patient" or not ctx.on_behalf_of:
        return []
    ids = [ctx.on_behalf_of, *[d for d in represented(store, ctx) if d != ctx.on_behalf_of]]
    page = search.search(store, ctx, "Patient", [("_id", ",".join(ids)), ("_count", str(len(ids)))])
    named = {v.logical_id: hb.name_of(jsonio.loads_stored(v.body or b"{}")) for v, mode in page.entries if mode == "match"}
    return [Person(pid, named.get(pid, ""), pid == ctx.on_behalf_of) for pid in ids if pid in named]


def ascii_name(text: str) -> str:
    """'Sổ-sức-khỏe' -> 'So-suc-khoe' (a file name every system accepts)."""
    decomposed = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if not unicodedata.combining(c) and (c.isalnum() or c in "-_.")).strip("-")


def content_disposition(filename: str) -> str:
    """An attachment named in Vietnamese (RFC 6266: UTF-8 name plus an ASCII fallback)."""
    return f"attachment; filename=\"{ascii_name(filename)}\"; filename*=UTF-8''{quote(filename)}"


@dataclass(frozen=True)
class Download:
    body: bytes
    filename: str  # Vietnamese, UTF-8

    @property
    def ascii_filename(self) -> str:
        return ascii_name(self.filename)

    @property
    def content_disposition(self) -> str:
        return content_disposition(self.filename)


def download(store: Store, ctx: AccessContext, patient_id: str, fhir_base: str, title: str = "Sổ-sức-khỏe-điện-tử") -> Download:
    """The whole record as one FHIR Bundle (collection) of the stored resources, as stored."""
    versions = record(store, ctx, patient_id)
    stamp = now_instant()
    bundle = bundle_bytes.new_bundle("collection", [], timestamp=stamp)
    bundle["timestamp"] = stamp
    entries = [({"fullUrl": f"{fhir_base.rstrip('/')}/{v.resource_type}/{v.logical_id}"}, v.body) for v in versions if v.body]
    name = f"{title}-{hb.iso_day(stamp)}.json"
    return Download(bundle_bytes.encode(bundle, entries), name)
