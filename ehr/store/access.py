"""Visibility as SQL: one predicate over a resource row decides whether a context may read it.

The same predicate filters search plans, single reads, history, includes, $everything and
exports, so every path answers the same question the same way. A resource is visible when:

- it is in no patient compartment (directory data: Organization, Practitioner, Location...),
  and the restriction allows shared data; or
- its compartment is one of the explicit patients (a patient's own record and dependants,
  break-glass grants); or
- its compartment is a patient in the care of the organization (staff); or
- it was created by the organization (system clients read back what they wrote); or
- its compartment is a patient with an active Consent naming the organization (or any
  organization) for this moment and purpose of use.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

from sqlalchemy import and_, delete, false, insert, literal, or_, select, true, update
from sqlalchemy.sql import ColumnElement

from ehr.store.schema import (
    accounts,
    api_clients,
    break_glass,
    care_relationships,
    client_jtis,
    idx_date,
    idx_reference,
    idx_token,
    login_failures,
    representations,
    resources,
    sessions,
)
from ehr.store.keysets import keys_in
from ehr.store.uow import UnitOfWork


@dataclass(frozen=True)
class Restriction:
    """What a principal may see, as SQL-checkable facts (no database lookups to build one)."""

    patients: tuple[str, ...] = ()  # explicit compartments (a patient's own record)
    representative: str | None = None  # a patient account: plus the patients it represents
    care_org: str | None = None  # staff: patients in this organization's care
    break_glass_account: str | None = None  # staff: plus unexpired break-glass grants
    created_by_org: str | None = None  # system clients: what their organization wrote
    consent_org: str | None = None  # system clients: patients who consented to this organization
    purpose: str = "TREAT"
    now_us: int = 0
    shared: bool = True  # resources in no compartment whose type is one of `shared_types`
    shared_types: frozenset[str] = frozenset()  # directory and conformance types (ehr.fhir.compartment)
    private_org: str | None = None  # staff: resources in no compartment written by their organization

    @property
    def needs_lookup(self) -> bool:
        return bool(self.representative or self.care_org or self.break_glass_account or self.consent_org)


def _consent_patients(org: str, purpose: str, now_us: int, provision_type: str) -> Any:
    """Patients of active Consents of this provision type that name `org` (or no actor: every
    organization), whose period covers now (or has none) and whose purposes include `purpose`."""
    consent = resources.alias(f"consent_{provision_type}")
    status = idx_token.alias(f"c_status_{provision_type}")
    actor_any = idx_reference.alias(f"c_actor_any_{provision_type}")
    actor = idx_reference.alias(f"c_actor_{provision_type}")
    period_any = idx_date.alias(f"c_period_any_{provision_type}")
    period = idx_date.alias(f"c_period_{provision_type}")
    purpose_match = idx_token.alias(f"c_purpose_{provision_type}")
    kind = idx_token.alias(f"c_type_{provision_type}")
    patient = idx_reference.alias(f"c_patient_{provision_type}")

    def rows(t: Any, param: str) -> Any:
        return select(literal(1)).where(t.c.resource_type == "Consent", t.c.logical_id == consent.c.logical_id, t.c.param == param)

    active = consent.c.logical_id.in_(select(status.c.logical_id).where(status.c.resource_type == "Consent", status.c.param == "status", status.c.code == "active"))
    names_org = or_(
        ~rows(actor_any, "actor").exists(),
        rows(actor, "actor").where(actor.c.target_type == "Organization", actor.c.target_id == org).exists(),
    )
    in_period = or_(
        ~rows(period_any, "period").exists(),
        rows(period, "period").where(period.c.low <= now_us, period.c.high > now_us).exists(),
    )
    for_purpose = rows(purpose_match, "purpose").where(purpose_match.c.code == purpose).exists()
    typed = rows(kind, "provision-type").where(kind.c.code == provision_type).exists()
    consents = select(consent.c.logical_id).where(
        consent.c.resource_type == "Consent", consent.c.deleted.is_(False), active, names_org, in_period, for_purpose, typed
    )
    return select(patient.c.target_id).where(
        patient.c.resource_type == "Consent", patient.c.param == "patient", patient.c.target_type == "Patient", patient.c.logical_id.in_(consents)
    )


def consent_condition(compartment: ColumnElement[Any], org: str, purpose: str, now_us: int) -> ColumnElement[bool]:
    """The patient permits `org` now for `purpose`, and no matching Consent of theirs denies it."""
    return and_(
        compartment.in_(_consent_patients(org, purpose, now_us, "permit")),
        compartment.not_in(_consent_patients(org, purpose, now_us, "deny")),
    )


def predicate(
    restriction: Restriction | None, compartment: ColumnElement[Any], created_by_org: ColumnElement[Any], resource_type: ColumnElement[Any]
) -> ColumnElement[bool]:
    """The visibility condition over a row's compartment, creator and type columns.

    A row in no compartment is shared only when its type is a directory or conformance type;
    any other such row (a Group, a Contract, a Bundle naming nobody here) is its writer's alone.
    """
    if restriction is None:
        return true()
    r = restriction
    parts: list[ColumnElement[bool]] = []
    if r.shared and r.shared_types:
        parts.append(and_(compartment.is_(None), resource_type.in_(sorted(r.shared_types))))
    if r.private_org:
        parts.append(and_(compartment.is_(None), created_by_org == r.private_org))
    if r.patients:
        parts.append(compartment.in_(list(r.patients)))
    if r.representative:
        parts.append(compartment.in_(select(representations.c.patient_id).where(representations.c.account_id == r.representative)))
    if r.care_org:
        cared = select(care_relationships.c.patient_id).where(care_relationships.c.organization_id == r.care_org, care_relationships.c.expires_at > r.now_us)
        parts.append(compartment.in_(cared))
    if r.break_glass_account:
        grants = select(break_glass.c.patient_id).where(break_glass.c.account_id == r.break_glass_account, break_glass.c.expires_at > r.now_us)
        parts.append(compartment.in_(grants))
    if r.created_by_org:
        parts.append(created_by_org == r.created_by_org)
    if r.consent_org:
        parts.append(consent_condition(compartment, r.consent_org, r.purpose, r.now_us))
    return or_(*parts) if parts else false()


def visible_keys(uow: UnitOfWork, restriction: Restriction | None, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of these (type, id) the restriction lets through (deleted ones included)."""
    if restriction is None:
        return set(keys)
    out: set[tuple[str, str]] = set()
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        stmt = select(resources.c.resource_type, resources.c.logical_id).where(
            keys_in(resources.c.resource_type, resources.c.logical_id, chunk),
            predicate(restriction, resources.c.compartment, resources.c.created_by_org, resources.c.resource_type),
        )
        out |= {(row[0], row[1]) for row in uow.execute(stmt)}
    return out


def row_visible(
    uow: UnitOfWork, restriction: Restriction | None, compartment: str | None, created_by_org: str | None, resource_type: str
) -> bool:
    """The predicate for one known row; answered without the database when it can be."""
    r = restriction
    if r is None:
        return True
    if compartment is None and r.shared and resource_type in r.shared_types:
        return True
    if compartment is None and r.private_org is not None and created_by_org == r.private_org:
        return True
    if compartment is not None and compartment in r.patients:
        return True
    if r.created_by_org is not None and created_by_org == r.created_by_org:
        return True
    if compartment is None or not r.needs_lookup:
        return False
    narrowed = replace(r, patients=(), created_by_org=None, shared=False, private_org=None)
    return bool(uow.execute(select(predicate(narrowed, literal(compartment), literal(None), literal(resource_type)))).scalar())


@dataclass(frozen=True)
class Gate:
    """What one unit of work may see and what its writes record.

    Every unit of work a service opens carries one; the store's search, include, history and
    export queries add its restriction to their SQL, so no path reads around it.
    """

    restriction: Restriction | None = None  # None: everything (operators, the server itself)
    creator_org: str | None = None  # recorded as resources.created_by_org on create
    care_org_on_register: str | None = None  # staff registering a Patient puts it in this org's care
    context: Any = None  # the services' AccessContext, for the audit records of writes

    @property
    def unrestricted(self) -> bool:
        return self.restriction is None


INTERNAL = Gate()  # the server's own jobs and operators' commands


# --- care relationships, break-glass ----------------------------------------------------------------


def add_care(uow: UnitOfWork, organization_id: str, patient_id: str, source: str, now: int, expires_at: int) -> None:
    """Start a care relationship, or renew it; an expired one starts afresh (new source, new start)."""
    match = (care_relationships.c.organization_id == organization_id, care_relationships.c.patient_id == patient_id)
    row = uow.execute(select(care_relationships.c.expires_at).where(*match)).first()
    if row is None:
        uow.execute(insert(care_relationships).values(
            organization_id=organization_id, patient_id=patient_id, created_at=now, source=source, expires_at=expires_at))
    elif row[0] <= now:
        uow.execute(update(care_relationships).where(*match).values(created_at=now, source=source, expires_at=expires_at))
    else:
        uow.execute(update(care_relationships).where(*match).values(expires_at=max(row[0], expires_at)))


def renew_care(uow: UnitOfWork, organization_id: str, patient_id: str, now: int, expires_at: int) -> None:
    """An encounter of a facility with a patient in its care extends the care (never revives an ended one)."""
    uow.execute(update(care_relationships).where(
        care_relationships.c.organization_id == organization_id, care_relationships.c.patient_id == patient_id,
        care_relationships.c.expires_at > now, care_relationships.c.expires_at < expires_at,
    ).values(expires_at=expires_at))


def end_care(uow: UnitOfWork, organization_id: str, patient_id: str) -> bool:
    """The patient ends a care relationship; whether there was one."""
    done = uow.execute(delete(care_relationships).where(
        care_relationships.c.organization_id == organization_id, care_relationships.c.patient_id == patient_id))
    return bool(done.rowcount)


def care_for_patient(uow: UnitOfWork, patient_id: str, now: int) -> list[dict[str, Any]]:
    """The patient's unexpired care relationships, newest first."""
    stmt = select(care_relationships).where(care_relationships.c.patient_id == patient_id, care_relationships.c.expires_at > now)
    return [dict(r._mapping) for r in uow.execute(stmt.order_by(care_relationships.c.created_at.desc()))]


def add_representation(uow: UnitOfWork, account_id: str, patient_id: str, recorded_by: str, now: int) -> None:
    exists = uow.execute(
        select(representations.c.patient_id).where(representations.c.account_id == account_id, representations.c.patient_id == patient_id)
    ).first()
    if not exists:
        uow.execute(insert(representations).values(account_id=account_id, patient_id=patient_id, created_at=now, recorded_by=recorded_by))


def in_care(uow: UnitOfWork, organization_id: str, patient_id: str, now: int) -> bool:
    stmt = select(care_relationships.c.patient_id).where(
        care_relationships.c.organization_id == organization_id, care_relationships.c.patient_id == patient_id,
        care_relationships.c.expires_at > now)
    return uow.execute(stmt).first() is not None


def creator_of(uow: UnitOfWork, resource_type: str, logical_id: str) -> str | None:
    """The organization that wrote a resource first (None: a person, an operator, or no such resource)."""
    stmt = select(resources.c.created_by_org).where(resources.c.resource_type == resource_type, resources.c.logical_id == logical_id)
    row = uow.execute(stmt).first()
    return row[0] if row else None


def add_break_glass(uow: UnitOfWork, row: dict[str, Any]) -> None:
    uow.execute(insert(break_glass).values(**row))


def break_glass_patients(uow: UnitOfWork, account_id: str, now: int) -> list[str]:
    stmt = select(break_glass.c.patient_id).where(break_glass.c.account_id == account_id, break_glass.c.expires_at > now)
    return sorted({row[0] for row in uow.execute(stmt)})


def break_glass_for_patient(uow: UnitOfWork, patient_id: str) -> list[dict[str, Any]]:
    stmt = select(break_glass).where(break_glass.c.patient_id == patient_id).order_by(break_glass.c.created_at.desc())
    return [dict(row) for row in uow.execute(stmt).mappings()]


# --- accounts, sessions, login throttling -------------------------------------------------------


def account_by(uow: UnitOfWork, **where: Any) -> dict[str, Any] | None:
    stmt = select(accounts)
    for column, value in where.items():
        stmt = stmt.where(accounts.c[column] == value)
    row = uow.execute(stmt).mappings().first()
    return dict(row) if row else None


def insert_account(uow: UnitOfWork, row: dict[str, Any]) -> None:
    uow.execute(insert(accounts).values(**row))


def update_account(uow: UnitOfWork, account_id: str, **values: Any) -> None:
    uow.execute(update(accounts).where(accounts.c.account_id == account_id).values(**values))


def session_get(uow: UnitOfWork, session_hash: bytes) -> dict[str, Any] | None:
    row = uow.execute(select(sessions).where(sessions.c.session_hash == session_hash)).mappings().first()
    return dict(row) if row else None


def session_put(uow: UnitOfWork, row: dict[str, Any]) -> None:
    if session_get(uow, row["session_hash"]) is None:
        uow.execute(insert(sessions).values(**row))
    else:
        uow.execute(update(sessions).where(sessions.c.session_hash == row["session_hash"]).values(**row))


def session_delete(uow: UnitOfWork, session_hash: bytes) -> None:
    uow.execute(delete(sessions).where(sessions.c.session_hash == session_hash))


def sessions_of_account_delete(uow: UnitOfWork, account_id: str) -> None:
    uow.execute(delete(sessions).where(sessions.c.account_id == account_id))


def failures_since(uow: UnitOfWork, account_key: bytes, since: int) -> list[int]:
    stmt = select(login_failures.c.at).where(login_failures.c.account_key == account_key, login_failures.c.at >= since).order_by(login_failures.c.at)
    return [row[0] for row in uow.execute(stmt)]


def add_failure(uow: UnitOfWork, account_key: bytes, at: int) -> None:
    uow.execute(insert(login_failures).values(account_key=account_key, at=at))


def clear_failures(uow: UnitOfWork, account_key: bytes) -> None:
    uow.execute(delete(login_failures).where(login_failures.c.account_key == account_key))


# --- API clients ---------------------------------------------------------------------------------


def client(uow: UnitOfWork, client_id: str) -> dict[str, Any] | None:
    row = uow.execute(select(api_clients).where(api_clients.c.client_id == client_id)).mappings().first()
    return dict(row) if row else None


def insert_client(uow: UnitOfWork, row: dict[str, Any]) -> None:
    uow.execute(insert(api_clients).values(**row))


def use_jti(uow: UnitOfWork, client_id: str, jti: str, expires_at: int, now: int) -> bool:
    """Record a client assertion's jti; False if it was seen before (a replay)."""
    uow.execute(delete(client_jtis).where(client_jtis.c.expires_at < now))
    seen = uow.execute(select(client_jtis.c.jti).where(client_jtis.c.client_id == client_id, client_jtis.c.jti == jti)).first()
    if seen:
        return False
    uow.execute(insert(client_jtis).values(client_id=client_id, jti=jti, expires_at=expires_at))
    return True


# --- web logins: throttling lock, attempt rows, session clean-up ---------------------------------

from sqlalchemy import text  # noqa: E402  (kept with the helpers that use it)

_LOGIN_LOCK_CLASS = 0x45485231  # "EHR1": the namespace of this module's PostgreSQL advisory locks


def lock_login(uow: UnitOfWork, account_key: bytes) -> None:
    """Serialise the throttling decisions about one login name until the unit of work ends.

    PostgreSQL: a transaction-scoped advisory lock on the key (no rows left behind, unlike a
    lock row per name an attacker sprays). SQLite: nothing to do, a writing unit of work already
    holds the database's single write lock from BEGIN IMMEDIATE to commit.
    """
    if uow.conn.dialect.name == "postgresql":
        sub = int.from_bytes(account_key[:4], "big", signed=True)
        uow.execute(text("SELECT pg_advisory_xact_lock(:cls, :sub)"), {"cls": _LOGIN_LOCK_CLASS, "sub": sub})


def record_failure(uow: UnitOfWork, account_key: bytes, at: int) -> int:
    """Count an attempt against a login name; its row id (to forget it if the attempt succeeds)."""
    result = uow.execute(insert(login_failures).values(account_key=account_key, at=at).returning(login_failures.c.id))
    return int(result.scalar_one())


def forget_failure(uow: UnitOfWork, row_id: int) -> None:
    uow.execute(delete(login_failures).where(login_failures.c.id == row_id))


def purge_failures(uow: UnitOfWork, before: int) -> None:
    uow.execute(delete(login_failures).where(login_failures.c.at < before))


def purge_sessions(uow: UnitOfWork, now: int, idle_before: int) -> None:
    """Forget sessions past their absolute end or idle for longer than any idle limit."""
    uow.execute(delete(sessions).where(or_(sessions.c.expires_at <= now, sessions.c.last_seen < idle_before)))


def touch_session(uow: UnitOfWork, session_hash: bytes, last_seen: int) -> None:
    uow.execute(update(sessions).where(sessions.c.session_hash == session_hash).values(last_seen=last_seen))
