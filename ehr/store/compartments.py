"""Patient compartments: who belongs to a patient's record, and retention facts."""

from __future__ import annotations

from sqlalchemy import and_, func, or_, select, tuple_

from ehr.store.access import predicate
from ehr.store.keysets import keys_in
from ehr.store.schema import idx_reference, resource_versions, resources
from ehr.store.uow import UnitOfWork

r = resources


def last_activity(uow: UnitOfWork, compartment: str) -> int | None:
    """Microsecond time of the newest version written in the compartment, or None if empty."""
    stmt = select(func.max(resource_versions.c.last_updated)).where(resource_versions.c.compartment == compartment)
    return uow.execute(stmt).scalar()


def _filters(stmt, since_us: int | None, types: list[str] | None):  # type: ignore[no-untyped-def]
    if since_us is not None:
        stmt = stmt.where(r.c.last_updated >= since_us)
    if types:
        stmt = stmt.where(r.c.resource_type.in_(types))
    return stmt


def members(uow: UnitOfWork, patient_id: str, since_us: int | None, types: list[str] | None) -> set[tuple[str, str]]:
    """Live resources in the patient's compartment: encrypted under their key (subject/patient...)
    or referring to the patient through any other element (performer, author...)."""
    own = _filters(select(r.c.resource_type, r.c.logical_id).where(r.c.compartment == patient_id, r.c.deleted.is_(False)), since_us, types)
    referring = _filters(
        select(r.c.resource_type, r.c.logical_id)
        .select_from(r.join(idx_reference, and_(idx_reference.c.resource_type == r.c.resource_type, idx_reference.c.logical_id == r.c.logical_id)))
        .where(idx_reference.c.target_type == "Patient", idx_reference.c.target_id == patient_id, r.c.deleted.is_(False)),
        since_us,
        types,
    )
    return {(row[0], row[1]) for row in uow.execute(own)} | {(row[0], row[1]) for row in uow.execute(referring.distinct())}


def referenced(uow: UnitOfWork, sources: list[tuple[str, str]], target_types: list[str], since_us: int | None) -> set[tuple[str, str]]:
    """Live resources of `target_types` that the sources reference.

    Two steps, each driven by its own index: the sources' references (by source), then the live
    targets (by key). As one join, SQLite preferred the index on the target type and walked every
    reference to any Practitioner or Organization in the database, so `$everything` grew with the
    size of the database (13 -> 88 ms for 36 resources from 10k to 100k, bench/README.md)."""
    wanted = set(target_types)
    targets: set[tuple[str, str]] = set()
    for start in range(0, len(sources), 500):
        stmt = select(idx_reference.c.target_type, idx_reference.c.target_id).where(
            keys_in(idx_reference.c.resource_type, idx_reference.c.logical_id, sources[start : start + 500]), idx_reference.c.param == "_ref"
        )
        targets |= {(row[0], row[1]) for row in uow.execute(stmt) if row[0] in wanted}
    out: set[tuple[str, str]] = set()
    ordered = sorted(targets)
    for start in range(0, len(ordered), 500):
        stmt = select(r.c.resource_type, r.c.logical_id).where(keys_in(r.c.resource_type, r.c.logical_id, ordered[start : start + 500]),
                                                                r.c.deleted.is_(False))
        if since_us is not None:
            stmt = stmt.where(r.c.last_updated >= since_us)
        out |= {(row[0], row[1]) for row in uow.execute(stmt)}
    return out


def all_patients_page(
    uow: UnitOfWork, support_types: list[str], since_us: int | None, types: list[str] | None, after: tuple[str, str] | None, limit: int
) -> list[tuple[str, str]]:
    """Type-level $everything: every patient-compartment resource and the shared support resources."""
    stmt = select(r.c.resource_type, r.c.logical_id).where(
        r.c.deleted.is_(False), or_(r.c.compartment.is_not(None), r.c.resource_type.in_(support_types))
    )
    stmt = _filters(stmt, since_us, types)
    if uow.access is not None and uow.access.restriction is not None:
        stmt = stmt.where(predicate(uow.access.restriction, r.c.compartment, r.c.created_by_org, r.c.resource_type))
    if after:
        stmt = stmt.where(tuple_(r.c.resource_type, r.c.logical_id) > tuple_(*after))
    return [(row[0], row[1]) for row in uow.execute(stmt.order_by(r.c.resource_type, r.c.logical_id).limit(limit))]
