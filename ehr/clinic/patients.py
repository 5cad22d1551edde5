"""Finding, registering and opening patients."""

from __future__ import annotations

import re
from typing import Any

from flask import current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from ehr.auth.current import login_required
from ehr.clinic import bp, common, forms
from ehr.fhir import healthbook as hb
from ehr.fhir import jsonio
from ehr.healthbook import trends
from ehr.fhir.outcomes import FhirError
from ehr.identity import codetables, qr
from ehr.auth import clock
from ehr.services import accounts, care, chart, practitioners, problem_list, queue, registration, search

WARNINGS = {
    "cccd-prefix": _l("3 chữ số đầu của CCCD không phải mã tỉnh nơi đăng ký khai sinh đã biết."),
    "cccd-sex": _l("Chữ số thứ 4 của CCCD ứng với giới tính khác với giới tính đã nhập."),
    "cccd-century": _l("Chữ số thứ 4 của CCCD ứng với thế kỷ sinh khác với ngày sinh."),
    "cccd-birth-year": _l("Chữ số 5-6 của CCCD khác với năm sinh."),
}


def _query(q: str) -> tuple[str, list[tuple[str, str]]]:
    """What the desk typed: a CCCD, a BHYT code, a phone number, or a name."""
    compact = "".join(q.split())
    systems = common.store().systems
    if re.fullmatch(r"\d{12}", compact):
        return "cccd", [("identifier", f"{systems.cccd}|{compact}")]
    if re.fullmatch(r"[A-Za-z]{2}\d{13}|\d{10}", compact) and not compact.startswith("0"):
        return "bhyt", [("_has:Coverage:beneficiary:identifier", compact.upper())]
    if re.fullmatch(r"\+?\d{9,12}", compact):
        return "phone", [("phone", compact)]
    return "name", [("name", q.strip())]


@bp.route("/patients", methods=["GET", "POST"])
@login_required(kind="staff", roles=common.STAFF)
def find() -> str:
    # The query travels in the body: a national ID, a card number or a name never sits in a URL,
    # a browser history or an access log.
    q = request.form.get("q", "").strip() if request.method == "POST" else ""
    results: list[dict[str, Any]] = []
    kind = None
    if q:
        kind, params = _query(q)
        page = search.search(common.store(), common.ctx(), "Patient", [*params, ("_count", "50")])
        results = [jsonio.loads_stored(v.body or b"{}") for v, mode in page.entries if mode == "match"]
    return _find_page(q, kind, results)


def _find_page(q: str, kind: str | None, results: list[dict[str, Any]], **extra: Any) -> str:
    recent = []
    for pid in session.get("recent", []):
        try:
            recent.append(chart.patient(common.store(), common.ctx(), pid))
        except FhirError:
            continue  # no longer visible (a break-glass grant or a care relationship ended)
    return render_template("clinic/find.html", q=q, kind=kind, results=results, recent=recent, common=common,
                           clinician=common.ctx().role in common.CLINICIANS, **extra)


NOT_OPENED = _l("Không mở được hồ sơ với số CCCD này. Bệnh nhân mới: đăng ký. Bệnh nhân đã có hồ sơ ở cơ sở khác: "
                "đề nghị bệnh nhân chia sẻ hồ sơ với cơ sở trong sổ sức khỏe điện tử; khi cấp cứu, bác sĩ hoặc điều dưỡng "
                "mở hồ sơ khẩn cấp.")


# Registration cannot hide that a number is taken (one Patient per CCCD); it names no record either.
TAKEN = _l("Số CCCD này đã được đăng ký. Đề nghị bệnh nhân chia sẻ hồ sơ với cơ sở trong sổ sức khỏe điện tử; khi cấp cứu, "
           "bác sĩ hoặc điều dưỡng mở hồ sơ khẩn cấp từ trang Tìm bệnh nhân.")


@bp.post("/patients/check-in")
@login_required(kind="staff", roles=common.STAFF)
def check_in() -> Response | tuple[str, int]:
    number = request.form.get("cccd", "")
    try:
        patient_id = care.check_in(common.store(), common.ctx(), number, arrived_at=clock.now())
    except FhirError as exc:
        # One answer for a number nobody holds and for another facility's patient without consent.
        message = str(NOT_OPENED) if exc.status == 404 else _("Số CCCD phải có đúng 12 chữ số.")
        return _find_page(number, "cccd", [], error=message, refused=exc.status == 404), 422
    return _arrived(patient_id)


def _arrived(patient_id: str) -> Response:
    if queue.queues(common.ctx()):
        # On to today's list, the patient's queue number announced and their row highlighted.
        return redirect(url_for("clinic.today", arrived=patient_id))
    return redirect(url_for("clinic.patient", patient_id=patient_id))


@bp.post("/patients/check-in/consent")
@login_required(kind="staff", roles=common.STAFF)
def check_in_with_consent() -> Response | tuple[str, int]:
    """Check in another facility's patient who has just signed the facility's paper consent form."""
    number, proof = request.form.get("cccd", ""), request.form.get("proof", "")
    try:
        days = int(request.form.get("days", "0"))
    except ValueError:
        days = 0
    try:
        patient_id = care.check_in_with_paper_consent(common.store(), common.ctx(), number, proof, days, arrived_at=clock.now())
    except FhirError as exc:
        message = str(NOT_OPENED) if exc.status == 404 else \
            _("Ghi số và nơi lưu giấy đồng ý đã ký (5-200 ký tự) và chọn thời hạn.")
        return _find_page(number, "cccd", [], error=message, refused=True, proof=proof, days=days), 422
    return _arrived(patient_id)


@bp.post("/patients/break-glass")
@login_required(kind="staff", roles=common.CLINICIANS)
def break_glass_by_cccd() -> Response | tuple[str, int]:
    """Emergency opening of another facility's patient from the CCCD presented at the desk."""
    number, reason = request.form.get("cccd", ""), request.form.get("reason", "")
    minutes = _minutes()
    store, ctx = common.store(), common.ctx()
    try:
        grant = care.break_glass_by_national_id(store, ctx, number, reason, minutes)
        care.check_in(store, ctx, number, arrived_at=clock.now())
    except FhirError as exc:
        message = str(NOT_OPENED) if exc.status == 404 else _("Nêu lý do cấp cứu (ít nhất 10 ký tự); thời hạn từ 1 đến 240 phút.")
        return _find_page(number, "cccd", [], error=message, refused=True, reason=reason, minutes=minutes), 422
    # An emergency: the clinician goes to the record (queued all the same: today's list shows the visit).
    return redirect(url_for("clinic.patient", patient_id=grant.patient_id))


def _minutes() -> int:
    try:
        return int(request.form.get("minutes", "60"))
    except ValueError:
        return 0


def _choices() -> dict[str, Any]:
    return {
        "province_options": [(p.code, p.full_name) for p in sorted(codetables.provinces().values(), key=lambda p: p.name)],
        "communes": sorted(codetables.communes().values(), key=lambda c: (c.province_code, c.name)),
        "ethnic_groups": sorted(codetables.ethnic_groups().items()),
        "occupations": sorted(codetables.occupations().items()),
    }


@bp.route("/patients/new", methods=["GET", "POST"])
@login_required(kind="staff", roles=common.STAFF)
def register() -> Response | str | tuple[str, int]:
    values: dict[str, Any] = {"nationality": "VN", "ethnicity": "01"}
    if request.method == "GET":  # what was typed when the session ended (ehr.auth.drafts)
        from ehr.auth import drafts

        values = drafts.take(request.path) or values
    errors: dict[str, list[str]] = {}
    if request.method == "POST" and request.form.get("action") == "qr":
        values.update({k: v for k, v in request.form.items() if k not in ("csrf_token", "action")})
        try:
            card = qr.parse(request.form.get("qr", ""))
            values.update(cccd=card.cccd, full_name=card.full_name, birth_date=card.birth_date.strftime("%d/%m/%Y"),
                          gender=card.gender, address_line=card.address)
        except qr.QrError:
            errors["qr"] = [_("Không đọc được mã QR trên CCCD: dán đúng nội dung quét được (7 trường, phân cách bằng |).")]
        return render_template("clinic/register.html", values=values, errors=errors, **_choices()), (422 if errors else 200)
    if request.method == "POST":
        values = {k: v for k, v in request.form.items() if k != "csrf_token"}
        data, errors = forms.RegisterSchema().load_form(request.form)
        if data is not None:
            try:
                done = registration.register(common.store(), common.ctx(), data)
            except FhirError as exc:
                field = registration.check_fields(exc.issues[0]) if exc.issues else None
                errors = {field or "form": [_("Không lưu được: %(reason)s", reason=exc.issues[0].diagnostics if exc.issues else exc.status)]}
                if exc.status == 409:  # the number is another facility's patient's, who has not shared the record here
                    errors = {"cccd": [str(TAKEN)]}
            else:
                args: dict[str, Any] = {"patient_id": done.patient_id}
                if done.existing:
                    args["existing"] = 1
                if done.warnings:
                    args["w"] = ",".join(done.warnings)
                return redirect(url_for("clinic.patient", **args))
        return render_template("clinic/register.html", values=values, errors=errors, **_choices()), 422
    return render_template("clinic/register.html", values=values, errors=errors, **_choices())


@bp.get("/patients/<patient_id>")
@login_required(kind="staff", roles=common.STAFF)
def patient(patient_id: str) -> str | tuple[str, int]:
    try:
        record = chart.chart(common.store(), common.ctx(), patient_id)
    except FhirError as exc:
        if exc.status in (403, 404):
            return render_template("clinic/closed.html", patient_id=patient_id), 404
        raise
    common.remember(patient_id)
    warnings = [str(WARNINGS[w]) for w in request.args.get("w", "").split(",") if w in WARNINGS]
    glass = care.grant_expiry(common.store(), common.ctx(), patient_id)
    return render_template("clinic/chart.html", c=record, warnings=warnings, existing=bool(request.args.get("existing")),
                           activation=None, common=common, glass_until=common.local_time(glass) if glass else None,
                           trend=_trend(record), updated=bool(request.args.get("updated")), list_notice=_list_notice())


def _list_notice() -> tuple[str, str] | None:
    """The result of the last change to the patient's lists, as (css class, message)."""
    if request.args.get("list_error"):
        return "error", _("Không cập nhật được danh sách: mục này do cơ sở khác ghi, hoặc dữ liệu nhập chưa đúng (chất gây dị ứng 2-200 ký tự).")
    if request.args.get("known") == "1":
        return "notice", _("Dị ứng này đã có trong danh sách.")
    if request.args.get("list_changed") == "1":
        return "notice", _("Đã cập nhật danh sách.")
    return None


def _trend(record: chart.Chart) -> list[dict[str, Any]]:
    """The vitals trend: one accessible SVG chart per measure, as the health book draws them."""
    series = hb.series(hb.Record(str(record.patient.get("id")), [*record.vitals, *record.labs]), all_vitals=True)
    return trends.drawn(series, "vitals")


@bp.post("/patients/<patient_id>/break-glass")
@login_required(kind="staff", roles=common.CLINICIANS)
def break_glass(patient_id: str) -> Response | tuple[str, int]:
    reason, minutes = request.form.get("reason", ""), _minutes()
    try:
        care.break_glass(common.store(), common.ctx(), patient_id, reason, minutes)
    except FhirError as exc:
        if exc.status == 404:
            return render_template("clinic/closed.html", patient_id=patient_id, error=_("Không tìm thấy bệnh nhân.")), 404
        message = _("Nêu lý do cấp cứu (ít nhất 10 ký tự); thời hạn từ 1 đến 240 phút.")
        return render_template("clinic/closed.html", patient_id=patient_id, error=message, reason=reason, minutes=minutes), 422
    return redirect(url_for("clinic.patient", patient_id=patient_id))


@bp.post("/patients/<patient_id>/activation")
@login_required(kind="staff", roles=common.STAFF)
def activation(patient_id: str) -> str | tuple[str, int]:
    """Hand the patient a one-time code to open their health book (shown once, never stored)."""
    try:
        record = chart.chart(common.store(), common.ctx(), patient_id)
    except FhirError:
        return render_template("clinic/closed.html", patient_id=patient_id), 404
    code, error = None, None
    try:
        code = accounts.create_patient_account(common.store(), common.ctx(), patient_id, now=clock.now())
    except accounts.AccountError as exc:
        error = _("Tài khoản sổ sức khỏe của bệnh nhân này đã được kích hoạt.") if "already activated" in str(exc) else \
            _("Bệnh nhân cần có đúng một số CCCD đang dùng để mở sổ sức khỏe.")
    return render_template("clinic/chart.html", c=record, warnings=[], existing=False, activation=code,
                           activation_error=error, common=common, trend=_trend(record)), (200 if code else 422)


@bp.route("/patients/<patient_id>/edit", methods=["GET", "POST"])
@login_required(kind="staff", roles=common.STAFF)
def edit_patient(patient_id: str) -> Response | str | tuple[str, int]:
    """Correct a patient's card at the desk: demographics, contacts, BHYT card, representative
    (new versions through the FHIR services, audited; the old versions stay in the history)."""
    store, ctx = common.store(), common.ctx()
    try:
        current = registration.card(store, ctx, patient_id)
    except FhirError:
        return render_template("clinic/closed.html", patient_id=patient_id), 404
    errors: dict[str, list[str]] = {}
    action = url_for("clinic.edit_patient", patient_id=patient_id)
    if request.method == "GET":
        values = registration.form_values(store, current)
        return render_template("clinic/register.html", values=values, errors=errors, action=action, editing=True, **_choices())
    values = {k: v for k, v in request.form.items() if k != "csrf_token"}
    data, errors = forms.RegisterSchema().load_form(request.form)
    if data is not None:
        try:
            found = registration.correct(store, ctx, patient_id, data)
        except FhirError as exc:
            field = registration.check_fields(exc.issues[0]) if exc.issues else None
            if exc.status == 409:
                errors = {"cccd": [str(TAKEN)]} if field == "cccd" else \
                    {"form": [_("Hồ sơ vừa được sửa ở nơi khác. Vui lòng mở lại trang và sửa lại.")]}
            elif exc.status == 412:
                errors = {"form": [_("Hồ sơ vừa được sửa ở nơi khác. Vui lòng mở lại trang và sửa lại.")]}
            elif exc.status == 403:
                errors = {"form": [_("Chỉ cơ sở đang điều trị cho bệnh nhân mới sửa được thông tin hành chính.")]}
            else:
                errors = {field or "form": [_("Không lưu được: %(reason)s", reason=exc.issues[0].diagnostics if exc.issues else exc.status)]}
        else:
            args: dict[str, Any] = {"patient_id": patient_id, "updated": 1}
            if found:
                args["w"] = ",".join(found)
            return redirect(url_for("clinic.patient", **args))
    return render_template("clinic/register.html", values=values, errors=errors, action=action, editing=True, **_choices()), 422



@bp.post("/patients/<patient_id>/lists/<resource_type>/<logical_id>")
@login_required(kind="staff", roles=("doctor",))
def change_list_item(patient_id: str, resource_type: str, logical_id: str) -> Response | tuple[str, int]:
    """Resolve / stop or mark entered-in-error one item of the patient's allergy, problem or medicine list."""
    try:
        problem_list.change(common.store(), common.ctx(), current_app.extensions["ehr.signing"], resource_type, logical_id,
                            request.form.get("action", ""))
    except FhirError as exc:
        if exc.status == 404:
            return render_template("clinic/closed.html", patient_id=patient_id), 404
        return redirect(url_for("clinic.patient", patient_id=patient_id, list_error=exc.status))
    return redirect(url_for("clinic.patient", patient_id=patient_id, list_changed=1))


@bp.post("/patients/<patient_id>/allergies")
@login_required(kind="staff", roles=common.CLINICIANS)
def add_allergy(patient_id: str) -> Response | tuple[str, int]:
    substance = " ".join(request.form.get("substance", "").split())
    criticality = request.form.get("criticality") or None
    if not 2 <= len(substance) <= 200 or criticality not in (None, "low", "high"):
        return redirect(url_for("clinic.patient", patient_id=patient_id, list_error=422))
    clinician = practitioners.for_account(common.store(), common.ctx())
    recorder = {"reference": f"Practitioner/{clinician.practitioner_id}", "display": clinician.name} if clinician else None
    try:
        added = problem_list.add_allergy(common.store(), common.ctx(), patient_id, substance, criticality,
                                         (request.form.get("reaction") or "").strip()[:200] or None, recorder)
    except FhirError as exc:
        if exc.status == 404:
            return render_template("clinic/closed.html", patient_id=patient_id), 404
        return redirect(url_for("clinic.patient", patient_id=patient_id, list_error=exc.status))
    return redirect(url_for("clinic.patient", patient_id=patient_id, list_changed=1 if added else 0, known=0 if added else 1))
