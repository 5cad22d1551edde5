"""The facility admin's staff page: list, create (temporary password, changed at first sign-in),
disable and enable, reset; every page header says who is signed in, as what, where."""

from __future__ import annotations

import re
from typing import Any

from auth.auth_helpers import OPS, PASSWORD, Browser, account_row, audit_rows
from clinic_helpers import _SECRET, post_form, sign_in  # _SECRET: the enrolment page's typed secret
from ehr.services import accounts, passwords, resources, totp

_TEMPORARY = re.compile(r'id="temporary-password"><code>([A-Z0-9-]{19})</code>')
NEW = "mật-khẩu-riêng-của-tôi-31"


def _create(admin: Browser, **fields: str) -> Any:
    data = {"username": "dd.lan", "display_name": "Đỗ Thị Lan", "role": "nurse", "licence": "001234/HNO-CCHN", **fields}
    return post_form(admin, "/clinic/staff/new", data)


def _temporary(response: Any) -> str:
    found = _TEMPORARY.search(response.get_data(as_text=True))
    assert found, response.get_data(as_text=True)
    return found.group(1)


def test_admin_creates_a_nurse_who_must_change_the_temporary_password(app, signed_in, store, clock):
    admin = signed_in("admin")
    page = admin.get("/clinic/").get_data(as_text=True)
    assert 'href="/clinic/staff"' in page and "Nhân viên" in page  # the admin's nav link
    created = _create(admin)
    assert created.status_code == 200
    temporary = _temporary(created)
    row = account_row(store, username="dd.lan")
    assert row["role"] == "nurse" and row["must_change_password"] and temporary.encode() not in (row["password_hash"] or "").encode()
    listing = admin.get("/clinic/staff").get_data(as_text=True)
    assert "Đỗ Thị Lan" in listing and "dd.lan" in listing and "Điều dưỡng" in listing and "001234/HNO-CCHN" in listing
    assert "Chờ đổi mật khẩu tạm thời" in listing and temporary not in listing  # shown once only
    nurse = Browser(app.test_client())
    assert nurse.login("dd.lan", temporary).headers["Location"] == "/auth/password"
    assert nurse.get("/clinic/").headers["Location"] == "/auth/password"  # enforced on every page
    changed = nurse.submit("/auth/password", {"current": temporary, "password": NEW, "confirm": NEW})
    assert changed.headers["Location"] == "/clinic/" and nurse.get("/clinic/").status_code == 200
    assert [e["action"] for e in audit_rows(store, "account.create")] == ["account.create"] * 2  # the admin's own and the nurse's


def test_bad_input_is_named_in_vietnamese_and_the_form_kept(signed_in, staff):
    admin = signed_in("admin")
    taken = staff("receptionist")
    cases = [
        ({"username": ""}, "Tên đăng nhập: vui lòng nhập."),
        ({"username": "1abc"}, "Tên đăng nhập: 3-64 ký tự"),
        ({"username": taken}, "Tên đăng nhập: đã có tài khoản dùng tên này"),
        ({"display_name": ""}, "Họ tên: vui lòng nhập."),
        ({"role": "surgeon"}, "Vai trò: hãy chọn một vai trò trong danh sách."),
        ({"licence": "số <giấy phép>"}, "Số chứng chỉ hành nghề: tối đa 40 ký tự"),
    ]
    for fields, message in cases:
        response = _create(admin, **fields)
        page = response.get_data(as_text=True)
        assert response.status_code == 422 and message in page, message
        assert "Đỗ Thị Lan" in page or fields.get("display_name") == ""  # what was typed stays
    english = post_form(admin, "/clinic/staff/new?lang=en", {"username": "", "display_name": "X", "role": "nurse"}, "/clinic/staff/new")
    assert "Username: please fill in." in english.get_data(as_text=True)


def test_disable_ends_the_session_and_enable_lets_them_back(app, signed_in, staff, clock):
    admin = signed_in("admin")
    name = staff("receptionist")
    desk = Browser(app.test_client())
    sign_in(desk, clock, name)
    assert desk.get("/clinic/").status_code == 200
    assert post_form(admin, f"/clinic/staff/{name}/active", {"active": "0"}, "/clinic/staff").status_code == 302
    assert desk.get("/clinic/").status_code == 302  # signed out at once
    assert desk.login(name).status_code == 200  # refused like a wrong password
    assert "Đã khóa" in admin.get("/clinic/staff").get_data(as_text=True)
    post_form(admin, f"/clinic/staff/{name}/active", {"active": "1"}, "/clinic/staff")
    assert desk.login(name).status_code == 302


def test_reset_gives_a_new_temporary_password_and_can_reset_totp(app, signed_in, store, staff, clock):
    admin = signed_in("admin")
    name = staff("doctor")
    doctor = Browser(app.test_client())
    sign_in(doctor, clock, name)  # enrols TOTP
    assert account_row(store, username=name)["totp_secret"]
    reset = post_form(admin, f"/clinic/staff/{name}/reset", {"totp": "1"}, "/clinic/staff")
    temporary = _temporary(reset)
    assert doctor.get("/clinic/").status_code == 302  # the old session ended
    assert doctor.login(name, PASSWORD).status_code == 200  # the old password stopped working
    row = account_row(store, username=name)
    assert row["totp_secret"] is None and row["must_change_password"]
    assert passwords.verify(row["password_hash"], temporary)
    # A new second factor, then the forced change, then the workspace.
    fresh = Browser(app.test_client())
    response = fresh.login(name, temporary)
    assert response.headers["Location"] == "/auth/totp/enrol"
    secret = _SECRET.search(fresh.get("/auth/totp/enrol").get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    assert fresh.code(totp.code_at(secret, clock()), "/auth/totp/enrol").headers["Location"] == "/auth/password"
    assert fresh.submit("/auth/password", {"current": temporary, "password": NEW, "confirm": NEW}).headers["Location"] == "/clinic/"
    assert {"password.reset", "totp.reset"} <= {e["action"] for e in audit_rows(store)}


def test_only_admins_of_the_facility(app, signed_in, store, staff, clock):
    nurse = signed_in("nurse")
    assert nurse.get("/clinic/staff").status_code == 403
    assert 'href="/clinic/staff"' not in nurse.get("/clinic/").get_data(as_text=True)
    other_org = resources.create(store, OPS, {"resourceType": "Organization", "name": "Bệnh viện Khác", "active": True}).version.logical_id
    accounts.create_staff(store, OPS, username="dd.khac", role="nurse", organization_id=other_org, display_name="Người khác",
                          password=PASSWORD, now=clock())
    admin = Browser(app.test_client())
    sign_in(admin, clock, staff("admin"))
    assert "Người khác" not in admin.get("/clinic/staff").get_data(as_text=True)
    refused = post_form(admin, "/clinic/staff/dd.khac/active", {"active": "0"}, "/clinic/staff")
    assert refused.status_code == 404 and account_row(store, username="dd.khac")["active"]
    assert post_form(admin, "/clinic/staff/dd.khac/reset", {}, "/clinic/staff").status_code == 404


def test_an_admin_does_not_lock_themselves_out(signed_in, store):
    admin = signed_in("admin")
    me = account_row(store, role="admin")["username"]
    response = post_form(admin, f"/clinic/staff/{me}/active", {"active": "0"}, "/clinic/staff")
    assert response.status_code == 422 and "Không thể tự khóa" in response.get_data(as_text=True)
    assert account_row(store, username=me)["active"]


def test_every_header_names_who_is_signed_in(signed_in):
    desk = signed_in("receptionist")
    for path in ("/clinic/", "/clinic/patients", "/", "/auth/password"):
        page = desk.get(path).get_data(as_text=True)
        header = page.split("</header>")[0]
        assert "Nguyễn Văn receptionist" in header and "Lễ tân" in header and "Phòng khám Hòa Bình" in header, path
    english = desk.get("/clinic/?lang=en").get_data(as_text=True).split("</header>")[0]
    assert "Receptionist" in english
