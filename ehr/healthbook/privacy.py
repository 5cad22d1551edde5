"""The privacy pages: who opened my record, sharing with a hospital, correction and deletion requests."""

from __future__ import annotations

from typing import Any

from flask import Response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ehr.auth.current import login_required
from ehr.fhir.outcomes import FhirError
from ehr.healthbook import bp, common
from ehr.services import directory, healthbook_privacy

ACTIONS = {
    "read": _l("Xem"), "vread": _l("Xem"), "history": _l("Xem lịch sử thay đổi"), "search": _l("Tra cứu"),
    "everything": _l("Xem toàn bộ hồ sơ"), "create": _l("Ghi thêm"), "update": _l("Sửa"), "patch": _l("Sửa"), "delete": _l("Xóa"),
    "break-glass": _l("Mở hồ sơ khẩn cấp"), "care.check-in": _l("Tiếp nhận khám theo số CCCD"), "care.record": _l("Ghi nhận đang điều trị"),
    "care.end": _l("Kết thúc quan hệ điều trị"),
    "care.representative": _l("Ghi nhận người đại diện"), "account.create": _l("Tạo tài khoản sổ sức khỏe"),
    "account.link": _l("Liên kết tài khoản"), "export": _l("Xuất dữ liệu"), "login": _l("Đăng nhập"), "sign": _l("Ký số"),
}
TYPES = {
    "Patient": _l("thông tin hành chính"), "Observation": _l("chỉ số, kết quả xét nghiệm"), "Condition": _l("chẩn đoán"),
    "Encounter": _l("đợt khám"), "MedicationRequest": _l("đơn thuốc"), "AllergyIntolerance": _l("dị ứng"), "Immunization": _l("tiêm chủng"),
    "Procedure": _l("phẫu thuật, thủ thuật"), "Composition": _l("tóm tắt đợt khám"), "Appointment": _l("lịch hẹn"),
    "Consent": _l("đồng ý chia sẻ"), "Coverage": _l("thẻ BHYT"), "RelatedPerson": _l("người đại diện"), "Task": _l("yêu cầu về dữ liệu"),
    "AuditEvent": _l("nhật ký truy cập"), "FamilyMemberHistory": _l("tiền sử gia đình"), "Provenance": _l("chữ ký số"),
    "DiagnosticReport": _l("kết quả cận lâm sàng"), "Organization": _l("danh bạ cơ sở y tế"),
}
WHO = {"staff": _l("Nhân viên y tế"), "system": _l("Hệ thống phần mềm của cơ sở"), "patient": _l("Tài khoản sổ sức khỏe khác (bệnh nhân hoặc người đại diện)"),
       "operator": _l("Quản trị hệ thống"), "server": _l("Hệ thống sổ sức khỏe"), "anonymous": _l("Không xác định")}
PURPOSES = {"TREAT": _l("Khám, chữa bệnh"), "ETREAT": _l("Cấp cứu"), "HPAYMT": _l("Thanh toán bảo hiểm y tế"), "HRESCH": _l("Nghiên cứu y học")}
DURATIONS = {30: _l("1 tháng"), 90: _l("3 tháng"), 180: _l("6 tháng"), 365: _l("1 năm"), 730: _l("2 năm")}
KINDS = {"correction": _l("Sửa thông tin sai"), "deletion": _l("Xóa dữ liệu")}
REQUEST_STATUS = {"requested": _l("Đã gửi, đang chờ xử lý"), "accepted": _l("Đã chấp nhận"), "rejected": _l("Bị từ chối"),
                  "completed": _l("Đã hoàn thành"), "in-progress": _l("Đang xử lý"), "cancelled": _l("Đã hủy")}
CARE_SOURCES = {"registered": _l("Đăng ký khám tại cơ sở"), "check-in": _l("Tiếp nhận khám bằng CCCD"),
                "consent": _l("Tiếp nhận khám theo sự đồng ý chia sẻ của bạn"), "break-glass": _l("Tiếp nhận cấp cứu"),
                "admin": _l("Cơ sở ghi nhận đang điều trị")}
NOTICES = {"granted": _l("Đã cho phép cơ sở truy cập hồ sơ."), "revoked": _l("Đã thu hồi quyền truy cập."),
           "ended": _l("Đã kết thúc quan hệ điều trị: cơ sở không còn xem được hồ sơ (trừ khi bạn đến khám lại)."),
           "requested": _l("Đã gửi yêu cầu. Cơ sở y tế phải xác nhận trong 2 ngày làm việc.")}


def _labels() -> dict[str, Any]:
    return {"actions": ACTIONS, "types": TYPES, "who": WHO, "purposes": PURPOSES, "durations": DURATIONS, "kinds": KINDS,
            "request_status": REQUEST_STATUS, "care_sources": CARE_SOURCES, "notice": NOTICES.get(request.args.get("m", ""))}


@bp.get("/<patient_id>/access-log")
@login_required(kind="patient")
def access_log(patient_id: str) -> str:
    include_own = request.args.get("all") == "1"
    log = healthbook_privacy.access_log(common.store(), common.ctx(), patient_id, include_own=include_own)
    return render_template("healthbook/access_log.html", log=log, include_own=include_own, **_labels(), **common.frame(patient_id))


def _sharing(patient_id: str, status: int = 200, errors: dict[str, str] | None = None, values: dict[str, Any] | None = None) -> tuple[str, int]:
    q = request.values.get("q", "").strip()
    found = directory.search_organizations(common.store(), common.ctx(), q) if q else []
    shared = healthbook_privacy.grants(common.store(), common.ctx(), patient_id)
    caring = healthbook_privacy.caring(common.store(), common.ctx(), patient_id)
    page = render_template(
        "healthbook/sharing.html", q=q, found=found, active=[s for s in shared if s.grant.active],
        past=[s for s in shared if not s.grant.active], caring=caring, care_days=common.store().care_days, errors=errors or {}, values=values or {"purpose": "TREAT", "days": "90"},
        consent_text=healthbook_privacy.CONSENT_TEXT, **_labels(), **common.frame(patient_id),
    )
    return page, status


@bp.route("/<patient_id>/sharing", methods=["GET", "POST"])
@login_required(kind="patient")
def sharing(patient_id: str) -> tuple[str, int] | Response:
    if request.method == "GET":
        return _sharing(patient_id)
    values = {k: request.form.get(k, "") for k in ("organization", "purpose", "days", "agree")}
    errors: dict[str, str] = {}
    if not values["organization"]:
        errors["organization"] = _("Chọn cơ sở y tế được xem hồ sơ.")
    if values["purpose"] not in PURPOSES:
        errors["purpose"] = _("Chọn mục đích sử dụng.")
    if not values["days"].isdigit() or int(values["days"]) not in DURATIONS:
        errors["days"] = _("Chọn thời hạn.")
    if values["agree"] != "yes":
        errors["agree"] = _("Đánh dấu ô xác nhận để đồng ý. Không đánh dấu nghĩa là không đồng ý.")
    if not errors:
        try:
            healthbook_privacy.grant(common.store(), common.ctx(), patient_id, values["organization"], values["purpose"], int(values["days"]))
        except FhirError as exc:
            if exc.status == 404:
                raise
            errors["organization"] = _("Không tìm thấy cơ sở y tế này trong danh bạ.")
        else:
            return redirect(url_for("healthbook.sharing", patient_id=patient_id, m="granted"))  # type: ignore[return-value]
    return _sharing(patient_id, 422, errors, values)


@bp.post("/<patient_id>/sharing/<consent_id>/revoke")
@login_required(kind="patient")
def revoke(patient_id: str, consent_id: str) -> Response:
    healthbook_privacy.revoke(common.store(), common.ctx(), patient_id, consent_id)
    return redirect(url_for("healthbook.sharing", patient_id=patient_id, m="revoked"))  # type: ignore[return-value]


@bp.post("/<patient_id>/sharing/care/<organization_id>/end")
@login_required(kind="patient")
def end_care(patient_id: str, organization_id: str) -> Response:
    healthbook_privacy.end_care(common.store(), common.ctx(), patient_id, organization_id)
    return redirect(url_for("healthbook.sharing", patient_id=patient_id, m="ended"))  # type: ignore[return-value]


@bp.route("/<patient_id>/requests", methods=["GET", "POST"])
@login_required(kind="patient")
def requests(patient_id: str) -> tuple[str, int] | Response:
    errors: dict[str, str] = {}
    values = {"kind": request.form.get("kind", ""), "text": request.form.get("text", "")}
    status = 200
    if request.method == "POST":
        if values["kind"] not in KINDS:
            errors["kind"] = _("Chọn loại yêu cầu.")
        if not 5 <= len(" ".join(values["text"].split())) <= 2000:
            errors["text"] = _("Mô tả yêu cầu (từ 5 đến 2000 ký tự).")
        if not errors:
            healthbook_privacy.submit_request(common.store(), common.ctx(), patient_id, values["kind"], values["text"])
            return redirect(url_for("healthbook.requests", patient_id=patient_id, m="requested"))  # type: ignore[return-value]
        status = 422
    mine, outlook = healthbook_privacy.requests(common.store(), common.ctx(), patient_id)
    page = render_template("healthbook/requests.html", mine=mine, outlook=outlook, errors=errors, values=values, **_labels(),
                           **common.frame(patient_id))
    return page, status
