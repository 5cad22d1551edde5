"""Demo data: shared facilities first, then one transaction per synthetic patient."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ehr.store.access import INTERNAL
from ehr.services import bundles, resources
from ehr.services.context import AccessContext
from ehr.store import index
from ehr.store.runtime import Store
from ehr.synthetic.generator import Generator, Scale


@dataclass
class DemoReport:
    patients: int
    resources: int


def has_patients(store: Store) -> bool:
    with store.reading(INTERNAL) as uow:
        return bool(index.live_of_type(uow, "Patient", None, None, 1))


def load(store: Store, ctx: AccessContext, patients: int, seed: int, progress: Callable[[int], None] | None = None) -> DemoReport:
    generator = Generator(seed=seed)
    written = 0
    for resource in generator.facility_resources():
        resources.update(store, ctx, resource["resourceType"], resource["id"], resource)
        written += 1
    for bundle in generator.patients(patients, scale=Scale(coverages=1)):
        written += len(bundles.ingest_transaction(store, ctx, bundle))
        if progress:
            progress(1)
    return DemoReport(patients, written)
