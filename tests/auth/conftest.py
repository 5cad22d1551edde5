"""Web login fixtures: a movable clock, an HTTPS test browser, a facility with staff, a patient."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from auth_helpers import OPS, PASSWORD, Clock, register_patient
from ehr.services import accounts, resources


@pytest.fixture
def facility(store: Any) -> str:
    written = resources.create(store, OPS, {"resourceType": "Organization", "name": "Phòng khám Hòa Bình", "active": True})
    return str(written.version.logical_id)


@pytest.fixture
def staff(store: Any, facility: str, clock: Clock) -> Callable[..., str]:
    """make(role) -> username of a new active staff account with PASSWORD."""
    made = iter(range(1000))

    def make(role: str = "nurse", username: str | None = None) -> str:
        name = username or f"{role}.{next(made)}"
        accounts.create_staff(store, OPS, username=name, role=role, organization_id=facility, display_name=f"Nguyễn Văn {role}",
                              password=PASSWORD, now=clock())
        return name

    return make


@pytest.fixture
def patient(store: Any, clock: Clock) -> tuple[str, str]:
    """(patient id, activation code) of a registered patient with an account not yet activated."""
    patient_id = register_patient(store)
    return patient_id, accounts.create_patient_account(store, OPS, patient_id, now=clock())
