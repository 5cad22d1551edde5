"""Export job rows, leases, checkpoints; and the resource keys an export walks."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update

from ehr.store.access import predicate
from ehr.store.schema import export_jobs, export_subjects, import_progress, resources
from ehr.store.uow import UnitOfWork

j = export_jobs
r = resources


def insert_job(uow: UnitOfWork, row: dict[str, Any]) -> None:
    uow.execute(insert(j).values(**row))


def get(uow: UnitOfWork, job_id: str) -> dict[str, Any] | None:
    row = uow.execute(select(j).where(j.c.job_id == job_id)).mappings().first()
    return dict(row) if row else None


def claim(uow: UnitOfWork, owner: str, now: int, lease_us: int) -> str | None:
    """Take a queued job, or a running one whose runner's lease ran out (the runner died)."""
    candidates = uow.execute(
        select(j.c.job_id).where(or_(j.c.status == "queued", and_(j.c.status == "running", j.c.lease_until < now))).order_by(j.c.created_at).limit(5)
    ).all()
    for (job_id,) in candidates:
        taken = uow.execute(
            update(j)
            .where(j.c.job_id == job_id, or_(j.c.status == "queued", and_(j.c.status == "running", j.c.lease_until < now)))
            .values(status="running", lease_owner=owner, lease_until=now + lease_us)
        )
        if taken.rowcount == 1:
            return str(job_id)
    return None


def checkpoint(uow: UnitOfWork, job_id: str, owner: str, progress: str, lease_until: int) -> bool:
    """Record progress and renew the lease; False when the job was cancelled or taken over."""
    done = uow.execute(
        update(j).where(j.c.job_id == job_id, j.c.lease_owner == owner, j.c.status == "running").values(progress=progress, lease_until=lease_until)
    )
    return done.rowcount == 1


def finish(uow: UnitOfWork, job_id: str, owner: str, status: str, finished_at: int, expires_at: int, error: str | None = None) -> None:
    uow.execute(
        update(j).where(j.c.job_id == job_id, j.c.lease_owner == owner)
        .values(status=status, finished_at=finished_at, expires_at=expires_at, lease_owner=None, lease_until=None, error=error)
    )


def set_status(uow: UnitOfWork, job_id: str, status: str) -> None:
    uow.execute(update(j).where(j.c.job_id == job_id).values(status=status, lease_owner=None, lease_until=None))


def remove(uow: UnitOfWork, job_id: str) -> None:
    uow.execute(delete(export_subjects).where(export_subjects.c.job_id == job_id))
    uow.execute(delete(j).where(j.c.job_id == job_id))


def add_subjects(uow: UnitOfWork, job_id: str, compartments: set[str]) -> None:
    """Record that the job's files now hold these patients' data (idempotent, for a resumed job)."""
    if not compartments:
        return
    s = export_subjects
    have = {row[0] for row in uow.execute(select(s.c.compartment).where(s.c.job_id == job_id, s.c.compartment.in_(sorted(compartments))))}
    if compartments - have:
        uow.execute(insert(s), [{"job_id": job_id, "compartment": c} for c in sorted(compartments - have)])


def holding(uow: UnitOfWork, compartment: str) -> list[dict[str, Any]]:
    """Jobs not cancelled whose files hold this patient's data."""
    s = export_subjects
    stmt = select(j).join(s, s.c.job_id == j.c.job_id).where(s.c.compartment == compartment, j.c.status != "cancelled")
    return [dict(row) for row in uow.execute(stmt).mappings()]


def expired(uow: UnitOfWork, now: int) -> list[str]:
    stmt = select(j.c.job_id).where(or_(and_(j.c.expires_at.is_not(None), j.c.expires_at < now), j.c.status == "cancelled"))
    return [row[0] for row in uow.execute(stmt)]


def export_keys(
    uow: UnitOfWork, resource_type: str, after_id: str, limit: int, since_us: int | None, level: str, patients: list[str] | None
) -> list[tuple[str, str]]:
    """The next live resources of a type for an export, in id order."""
    stmt = select(r.c.resource_type, r.c.logical_id).where(r.c.resource_type == resource_type, r.c.deleted.is_(False), r.c.logical_id > after_id)
    if since_us is not None:
        stmt = stmt.where(r.c.last_updated >= since_us)
    if uow.access is not None and uow.access.restriction is not None:
        stmt = stmt.where(predicate(uow.access.restriction, r.c.compartment, r.c.created_by_org, r.c.resource_type))
    if level == "patient" and resource_type != "Patient":
        stmt = stmt.where(r.c.compartment.is_not(None))
    elif level == "group":
        members = patients or [""]
        stmt = stmt.where(r.c.logical_id.in_(members) if resource_type == "Patient" else r.c.compartment.in_(members))
    return [(row[0], row[1]) for row in uow.execute(stmt.order_by(r.c.logical_id).limit(limit))]


# --- import progress -----------------------------------------------------------------------------


def import_state(uow: UnitOfWork, file_key: str) -> dict[str, Any] | None:
    row = uow.execute(select(import_progress).where(import_progress.c.file_key == file_key)).mappings().first()
    return dict(row) if row else None


def save_import_state(uow: UnitOfWork, file_key: str, file_name: str, position: int, total: int, done: bool, now: int) -> None:
    values = dict(file_name=file_name, position=position, total=total, done=done, updated_at=now)
    if import_state(uow, file_key) is None:
        uow.execute(insert(import_progress).values(file_key=file_key, **values))
    else:
        uow.execute(update(import_progress).where(import_progress.c.file_key == file_key).values(**values))
