"""The facility admin's staff page (accounts of the facility: create, disable or enable, reset a
forgotten password), and the desk's reset of a patient's health-book account.

Temporary passwords and activation codes are shown once, in the answer to the POST that made
them, never stored in plaintext nor put in a URL. The rules live in `ehr.services.accounts`; this
module parses the forms, calls it and words the outcome.
"""

from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from ehr.auth import clock
from ehr.auth.current import login_required
from ehr.clinic import bp, common
from ehr.fhir.healthbook import Record, series
from ehr.fhir.outcomes import FhirError
from ehr.healthbook import trends
from ehr.services import accounts, chart
from ehr.services.context import STAFF_ROLES

Page = Response | str | tuple[str, int]
ROLE_LABELS = {"doctor": _l("Bác sĩ"), "nurse": _l("Điều dưỡng"), "receptionist": _l("Lễ tân"), "admin": _l("Quản trị")}
FIELDS = ("username", "display_name", "role", "licence")


def _field_error(exc: accounts.AccountError) -> tuple[str, str]:
    """(form field, Vietnamese message naming it) of a refusal of the accounts service."""
    if exc.field == "username":
        if "taken" in str(exc):
            return "username", _("Tên đăng nhập: đã có tài khoản dùng tên này, hãy chọn tên khác.")
        return "username", _("Tên đăng nhập: 3-64 ký tự gồm chữ thường không dấu, số, '.', '_' hoặc '-', bắt đầu bằng một chữ cái.")
    if exc.field == "role":
        return "role", _("Vai trò: hãy chọn một vai trò trong danh sách.")
    if exc.field == "display name":
        return "display_name", _("Họ tên: cần từ 1 đến 200 ký tự.")
    if exc.field == "licence":
        return "licence", _("Số chứng chỉ hành nghề: tối đa 40 ký tự gồm chữ, số, '/', '-' hoặc '.'.")
    return "", _("Không tạo được tài khoản. Vui lòng kiểm tra lại các ô.")


def _list(error: str | None = None, status: int = 200, **extra: Any) -> tuple[str, int]:
    ctx = common.ctx()
    members = accounts.list_staff(common.store(), ctx, ctx.organization or "")
    return render_template("clinic/staff.html", members=members, roles=ROLE_LABELS, me=ctx.account_id, error=error,
                           common=common, **extra), status


@bp.get("/staff")
@login_required(kind="staff", roles=("admin",))
def staff_list() -> Page:
    return _list()


@bp.route("/staff/new", methods=["GET", "POST"])
@login_required(kind="staff", roles=("admin",))
def staff_new() -> Page:
    values = {name: (request.form.get(name) or "").strip() for name in FIELDS}
    if request.method == "GET":
        return render_template("clinic/staff_new.html", values=values, errors={}, roles=ROLE_LABELS, common=common)
    errors: dict[str, list[str]] = {}
    if not values["username"]:
        errors["username"] = [_("Tên đăng nhập: vui lòng nhập.")]
    if not values["display_name"]:
        errors["display_name"] = [_("Họ tên: vui lòng nhập.")]
    if values["role"] not in STAFF_ROLES:
        errors["role"] = [_("Vai trò: hãy chọn một vai trò trong danh sách.")]
    if not errors:
        ctx = common.ctx()
        try:
            _account_id, temporary = accounts.create_staff(
                common.store(), ctx, username=values["username"], role=values["role"], organization_id=ctx.organization or "",
                display_name=values["display_name"], licence=values["licence"] or None, temporary=True, now=clock.now(),
            )
        except accounts.AccountError as exc:
            field, message = _field_error(exc)
            errors[field or "form"] = [message]
        else:
            return render_template("clinic/staff_secret.html", username=accounts.normalize_username(values["username"]),
                                   temporary=temporary, created=True, common=common)
    return render_template("clinic/staff_new.html", values=values, errors=errors, roles=ROLE_LABELS, common=common), 422


def _own(username: str) -> bool:
    """Is this the admin's own account? (an admin does not lock or reset themselves out here)"""
    ctx = common.ctx()
    return any(m.username == accounts.normalize_username(username) and m.account_id == ctx.account_id
               for m in accounts.list_staff(common.store(), ctx, ctx.organization or ""))


@bp.post("/staff/<username>/active")
@login_required(kind="staff", roles=("admin",))
def staff_active(username: str) -> Page:
    active = request.form.get("active") == "1"
    if not active and _own(username):
        return _list(_("Không thể tự khóa tài khoản của chính mình."), 422)
    try:
        accounts.set_active(common.store(), common.ctx(), username, active)
    except (accounts.AccountError, FhirError):
        return _list(_("Không tìm thấy tài khoản nhân viên này trong cơ sở."), 404)
    return redirect(url_for("clinic.staff_list"))


@bp.post("/staff/<username>/reset")
@login_required(kind="staff", roles=("admin",))
def staff_reset(username: str) -> Page:
    if _own(username):
        return _list(_("Để đổi mật khẩu của chính mình, hãy dùng trang Đổi mật khẩu."), 422)
    try:
        temporary = accounts.reset_password(common.store(), common.ctx(), username, with_totp=request.form.get("totp") == "1")
    except (accounts.AccountError, FhirError):
        return _list(_("Không tìm thấy tài khoản nhân viên này trong cơ sở."), 404)
    return render_template("clinic/staff_secret.html", username=accounts.normalize_username(username), temporary=temporary,
                           created=False, totp_reset=request.form.get("totp") == "1", common=common)


def _trend(record: chart.Chart) -> list[dict[str, Any]]:
    # The chart page's vitals trend (as ehr.clinic.patients draws it for the same template).
    return trends.drawn(series(Record(str(record.patient.get("id")), record.vitals), all_vitals=True), "vitals")


@bp.post("/patients/<patient_id>/activation/reset")
@login_required(kind="staff", roles=accounts.RESET_ROLES)
def patient_activation_reset(patient_id: str) -> Page:
    """A patient who forgot their password: after checking their identity document, the desk
    gives a new activation code (the old password stops working)."""
    try:
        record = chart.chart(common.store(), common.ctx(), patient_id)
    except FhirError:
        return render_template("clinic/closed.html", patient_id=patient_id), 404
    code, error = None, None
    if request.form.get("confirmed") != "1":
        error = _("Xác nhận danh tính: hãy kiểm tra CCCD của bệnh nhân và đánh dấu ô xác nhận trước khi cấp lại mã.")
    else:
        try:
            code = accounts.reset_patient_account(common.store(), common.ctx(), patient_id, now=clock.now())
        except accounts.AccountError:
            error = _("Bệnh nhân cần có đúng một số CCCD đang dùng để mở sổ sức khỏe.")
        except FhirError:
            return render_template("clinic/closed.html", patient_id=patient_id), 404
    return render_template("clinic/chart.html", c=record, warnings=[], existing=False, activation=code, activation_error=error,
                           common=common, trend=_trend(record)), (200 if code else 422)
