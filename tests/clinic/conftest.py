"""Clinic page fixtures: the HTTPS test browser of the login tests, signed in as staff."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from auth.auth_helpers import OPS, PASSWORD, Browser, Clock
from clinic_helpers import sign_in
from ehr.services import accounts, resources


@pytest.fixture
def staff(store: Any, clock: Clock) -> Callable[[str], str]:
    """make(role) -> username of a new staff account (PASSWORD) of one facility."""
    facility = resources.create(store, OPS, {"resourceType": "Organization", "name": "Phòng khám Hòa Bình", "active": True}).version.logical_id
    made = iter(range(1000))

    def make(role: str) -> str:
        name = f"{role}.{next(made)}"
        accounts.create_staff(store, OPS, username=name, role=role, organization_id=facility, display_name=f"Nguyễn Văn {role}",
                              password=PASSWORD, now=clock())
        return name

    return make


@pytest.fixture
def signed_in(browser: Browser, clock: Clock, staff: Callable[..., str]) -> Callable[[str], Browser]:
    def as_role(role: str) -> Browser:
        sign_in(browser, clock, staff(role))
        return browser
    return as_role
