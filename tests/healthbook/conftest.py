"""Health-book fixtures: two patients with seeded records and activated accounts (A and B), and
the HTTPS test browser of the login tests signed in as one of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pytest

import book_seed as seed
from auth.auth_helpers import Browser


@dataclass
class World:
    a: seed.Seeded
    b: seed.Seeded
    orgs: list[str]


@pytest.fixture
def world(app: Any, store: Any) -> World:
    orgs = seed.facilities(store)
    keys = app.extensions["ehr.signing"]
    a, b = seed.patient(store, keys, 0, orgs=orgs), seed.patient(store, keys, 1, orgs=orgs)
    seed.account(store, a)
    seed.account(store, b)
    return World(a, b, orgs)


@pytest.fixture
def signed_in(app: Any) -> Callable[[seed.Seeded], Browser]:
    def login(who: seed.Seeded) -> Browser:
        browser = Browser(app.test_client())
        assert browser.login(who.cccd, seed.PASSWORD).status_code == 302
        return browser
    return login
