"""A patient who forgot their password: the desk checks their CCCD and gives a new activation
code (the old password stops working); the health book's header says who is signed in."""

from __future__ import annotations

import re
from typing import Any

from auth.auth_helpers import CCCD, OPS, PASSWORD, Browser, account_row, audit_rows
from clinic_helpers import post_form, sign_in
from ehr.services import accounts, logins, policy, resources

_CODE = re.compile(r'id="activation-code">([A-Z0-9-]{14})<')
NEW = "mật-khẩu-sau-khi-cấp-lại-77"


def _patient_of(store: Any, username: str, clock: Any) -> str:
    """A patient registered by this staff member's facility, with an activated account (PASSWORD)."""
    row = account_row(store, username=username)
    ctx = policy.staff_context(row["account_id"], row["organization_id"], row["role"])
    doc = {"resourceType": "Patient", "active": True, "name": [{"text": "Trần Thị Bình"}], "identifier": [{"system": store.systems.cccd, "value": CCCD}]}
    patient_id = str(resources.create(store, ctx, doc).version.logical_id)
    code = accounts.create_patient_account(store, OPS, patient_id, now=clock())
    assert logins.activate(store, CCCD, code, PASSWORD, limits=logins.Limits(), now=clock(), caller=logins.Caller()).status == "ok"
    return patient_id


def _reset(browser: Browser, patient_id: str, confirmed: bool = True) -> Any:
    data = {"confirmed": "1"} if confirmed else {}
    return post_form(browser, f"/clinic/patients/{patient_id}/activation/reset", data, f"/clinic/patients/{patient_id}")


def test_the_desk_resets_a_forgotten_password(app, browser, store, staff, clock):
    desk = staff("receptionist")
    patient_id = _patient_of(store, desk, clock)
    book = Browser(app.test_client())
    assert book.login(CCCD).status_code == 302
    header = book.get(f"/healthbook/{patient_id}/").get_data(as_text=True).split("</header>")[0]
    assert "Trần Thị Bình" in header and "Bệnh nhân" in header  # who is signed in, as what
    sign_in(browser, clock, desk)
    refused = _reset(browser, patient_id, confirmed=False)
    assert refused.status_code == 422 and "Xác nhận danh tính" in refused.get_data(as_text=True)
    assert book.get("/healthbook/").status_code == 302 and book.get(f"/healthbook/{patient_id}/").status_code == 200  # nothing changed yet
    response = _reset(browser, patient_id)
    assert response.status_code == 200
    code = _CODE.search(response.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    assert book.get(f"/healthbook/{patient_id}/").status_code == 302  # the patient's session ended
    assert book.login(CCCD, PASSWORD).status_code == 200  # the old password stopped working
    activated = book.submit("/auth/activate", {"login": CCCD, "code": code, "password": NEW, "confirm": NEW})
    assert activated.headers["Location"] == "/auth/login?m=activated"
    assert book.login(CCCD, NEW).status_code == 302
    (row,) = audit_rows(store, "account.reset")
    assert row["compartment"] == patient_id and row["principal"] == f"staff:{account_row(store, username=desk)['account_id']}"


def test_nurses_cannot_and_other_facilities_do_not_see_the_patient(app, browser, store, staff, clock):
    patient_id = _patient_of(store, staff("receptionist"), clock)
    nurse = Browser(app.test_client())
    sign_in(nurse, clock, staff("nurse"))
    token_page = nurse.get(f"/clinic/patients/{patient_id}").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', token_page).group(1)  # type: ignore[union-attr]
    assert nurse.post(f"/clinic/patients/{patient_id}/activation/reset", {"confirmed": "1", "csrf_token": token}).status_code == 403
    other = resources.create(store, OPS, {"resourceType": "Organization", "name": "Bệnh viện Khác", "active": True}).version.logical_id
    accounts.create_staff(store, OPS, username="lt.khac", role="receptionist", organization_id=other, display_name="Lễ tân khác",
                          password=PASSWORD, now=clock())
    sign_in(browser, clock, "lt.khac")
    page = post_form(browser, f"/clinic/patients/{patient_id}/activation/reset", {"confirmed": "1"}, "/clinic/patients")
    assert page.status_code == 404
    assert browser.login(CCCD).status_code == 302  # untouched: the password still works
    assert audit_rows(store, "account.reset") == []


def test_the_service_refuses_patients_and_nurses(store, staff, clock):
    import pytest

    patient_id = _patient_of(store, staff("receptionist"), clock)
    row = account_row(store, patient_id=patient_id)
    for ctx in (policy.patient_context(row["account_id"], patient_id),
                policy.staff_context("x", account_row(store, username=staff("nurse"))["organization_id"], "nurse")):
        with pytest.raises(policy.Denied):
            accounts.reset_patient_account(store, ctx, patient_id, now=clock())
