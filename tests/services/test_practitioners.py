"""Each staff account has one Practitioner and one PractitionerRole, made on first use, owned
by its facility, readable as directory data; two first uses at once make one of each."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from auth.auth_helpers import OPS, PASSWORD
from ehr.fhir import jsonio
from ehr.services import accounts, policy, practitioners, resources, search
from ehr.services.context import AccessContext
from ehr.store.keys import now_us


def _facility(store: Any, name: str = "Phòng khám Hòa Bình") -> str:
    return str(resources.create(store, OPS, {"resourceType": "Organization", "name": name, "active": True}).version.logical_id)


def _staff(store: Any, org: str, role: str, username: str, licence: str | None = None) -> AccessContext:
    account_id, _ = accounts.create_staff(store, OPS, username=username, role=role, organization_id=org, display_name="Nguyễn Thị Hoà",
                                          password=PASSWORD, now=now_us(), licence=licence)
    return policy.staff_context(account_id, org, role)


def _all(store: Any, rtype: str) -> list[dict[str, Any]]:
    page = search.search(store, OPS, rtype, [("_count", "100")])
    return [jsonio.loads_stored(v.body or b"{}") for v, mode in page.entries if mode == "match"]


def test_a_nurse_gets_a_practitioner_and_role_of_her_facility_once(store: Any) -> None:
    org = _facility(store)
    nurse = _staff(store, org, "nurse", "dd.hoa", licence=" 000123/hno-cchn ")
    first = practitioners.for_account(store, nurse)
    assert first is not None and first.name == "Nguyễn Thị Hoà" and first.licence == "000123/HNO-CCHN"
    assert practitioners.for_account(store, nurse) == first  # idempotent: the ids kept in the account row
    (doc,) = _all(store, "Practitioner")
    assert doc["id"] == first.practitioner_id and doc["name"][0]["text"] == "Nguyễn Thị Hoà"
    assert {"system": store.systems.practitioner_licence, "value": "000123/HNO-CCHN"}.items() <= doc["identifier"][1].items()
    (role,) = _all(store, "PractitionerRole")
    assert role["id"] == first.role_id and role["practitioner"]["reference"] == f"Practitioner/{first.practitioner_id}"
    assert role["organization"]["reference"] == f"Organization/{org}"
    assert role["code"][0]["coding"][0]["code"] == "nurse" and role["code"][0]["text"] == "Điều dưỡng"
    # Directory data: another facility's receptionist reads it, but only the owning facility changes it.
    other = _staff(store, _facility(store, "Bệnh viện khác"), "admin", "qt.khac")
    assert resources.read(store, other, "Practitioner", first.practitioner_id).logical_id == first.practitioner_id
    with pytest.raises(policy.Denied):
        resources.update(store, other, "Practitioner", first.practitioner_id, {**doc, "active": False})


def test_not_for_patients_operators_or_contexts_without_an_account(store: Any) -> None:
    org = _facility(store)
    assert practitioners.for_account(store, OPS) is None
    assert practitioners.for_account(store, policy.patient_context("a", "p")) is None
    assert practitioners.for_account(store, policy.staff_context("no-such-account", org, "doctor")) is None
    assert _all(store, "Practitioner") == []


def test_receptionist_and_admin_roles_have_vietnamese_names(store: Any) -> None:
    org = _facility(store)
    for role, text in (("receptionist", "Lễ tân"), ("admin", "Quản trị"), ("doctor", "Bác sĩ")):
        found = practitioners.for_account(store, _staff(store, org, role, f"u.{role}"))
        assert found is not None and found.licence is None
        role_doc = jsonio.loads_stored(resources.read(store, OPS, "PractitionerRole", found.role_id).body or b"{}")
        assert role_doc["code"][0]["text"] == text


def test_two_first_uses_at_once_make_one_practitioner(store: Any) -> None:
    org = _facility(store)
    doctor = _staff(store, org, "doctor", "bs.an")
    results: list[Any] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def use() -> None:
        try:
            start.wait()
            results.append(practitioners.for_account(store, doctor))
        except BaseException as exc:  # noqa: BLE001  (reported by the assertion below)
            errors.append(exc)

    threads = [threading.Thread(target=use) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(results) == 2 and results[0] == results[1]
    assert len(_all(store, "Practitioner")) == 1 and len(_all(store, "PractitionerRole")) == 1
