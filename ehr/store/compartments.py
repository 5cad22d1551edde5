"""Facts about a patient compartment, for retention decisions."""

from __future__ import annotations

from sqlalchemy import func, select

from ehr.store.schema import resource_versions
from ehr.store.uow import UnitOfWork


def last_activity(uow: UnitOfWork, compartment: str) -> int | None:
    """Microsecond time of the newest version written in the compartment, or None if empty."""
    stmt = select(func.max(resource_versions.c.last_updated)).where(resource_versions.c.compartment == compartment)
    return uow.execute(stmt).scalar()
