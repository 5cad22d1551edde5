"""Printed papers (PDF, server-rendered): the outpatient prescription (đơn thuốc), the visit
summary, the lab result sheet and the health-book activation slip.

Plain links open them (a phone's browser shows or downloads the PDF): GET for the visit papers;
the activation slip is a POST from the chart page that has just shown the one-time code, carrying
that code back (the code is never stored in clear; the slip is printed only for this patient's
live code). Vietnamese by default, English with ?lang=en; dates dd/mm/yyyy in Vietnam time.
"""

from __future__ import annotations

import unicodedata
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from flask import abort, make_response, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from ehr import papers as render
from ehr.auth import clock
from ehr.auth.current import login_required
from ehr.clinic import bp, common
from ehr.fhir.outcomes import FhirError
from ehr.healthbook.common import MEASURES
from ehr.identity import clinical_codes, icd10
from ehr.services import papers, policy


def _lang() -> str:
    return str(get_locale() or "vi")


def number(value: Decimal | int | None) -> str:
    """A number as the page's language writes it (decimal comma in Vietnamese)."""
    if value is None:
        return ""
    text = format(Decimal(str(value)).normalize(), "f")
    return text.replace(".", ",") if _lang().startswith("vi") else text


def _route(drug: papers.Drug) -> str:
    row = clinical_codes.by_code(clinical_codes.routes(), drug.route) if drug.route else None
    return clinical_codes.label(row, _lang()) if row else drug.route_display


def _diagnosis(code: str, name: str) -> str:
    """The ICD-10 name in the page's language from the catalogue, else the name recorded."""
    found = icd10.lookup(code)
    if found is None:
        return name
    if not _lang().startswith("vi"):
        english = getattr(found, "display_en", None) or (found.name(_lang()) if callable(getattr(found, "name", None)) else None)
        if english:
            return str(english)
    return str(getattr(found, "display_vi", None) or found.display or name)


def _directions(drug: papers.Drug) -> str:
    """"Uống 1 viên/lần, 3 lần/ngày, trong 5 ngày. Sau ăn." in the page's language."""
    parts = []
    route = _route(drug)
    if drug.dose is not None:
        parts.append(_("%(route)s %(dose)s %(unit)s/lần", route=route, dose=number(drug.dose), unit=drug.dose_unit).strip())
    elif route:
        parts.append(route)
    if drug.frequency:
        parts.append(_("%(n)s lần/ngày", n=drug.frequency))
    if drug.days:
        parts.append(_("trong %(n)s ngày", n=drug.days))
    text = ", ".join(p for p in parts if p)
    return f"{text}. {drug.directions}".strip() if drug.directions else text


def _age(birth: str, on: date) -> str:
    years, months = papers.age(birth, on)
    if months < 72:  # children under 72 months: the age in months (MoH prescription rules)
        return _("%(n)s tháng tuổi", n=months)
    return _("%(n)s tuổi", n=years)


# Measures by the health book's Vietnamese names (the record holds LOINC's English display); the
# lab sheet names the blood group in full, as a laboratory writes it.
_PAPER_NAMES = {clinical_codes.ABO_RH_LOINC: _l("Nhóm máu ABO và Rh")}
_UNITS = {"Cel": "°C", "mm[Hg]": "mmHg", "/min": _l("lần/phút"), "kg/m2": "kg/m²"}


def _loinc(doc: dict[str, Any]) -> str:
    return str((((doc.get("code") or {}).get("coding") or [{}])[0]).get("code") or "")


def vital_name(doc: dict[str, Any]) -> str:
    return str(_PAPER_NAMES.get(_loinc(doc)) or common.measure_name(doc.get("code")))


def vital_value(doc: dict[str, Any]) -> str:
    if doc.get("component"):
        values = [number(_decimal((c.get("valueQuantity") or {}).get("value"))) for c in doc["component"]]
        return "/".join(values) + " mmHg"
    q = doc.get("valueQuantity") or {}
    unit = q.get("code") or q.get("unit") or ""
    return f"{number(_decimal(q.get('value')))} {_UNITS.get(unit, unit)}".strip()


def lab_name(result: papers.Result) -> str:
    return str(_PAPER_NAMES.get(result.loinc) or MEASURES.get(result.loinc) or result.name)


def lab_value(result: papers.Result) -> str:
    if result.loinc == clinical_codes.ABO_RH_LOINC and result.value_code:
        group = clinical_codes.by_code(clinical_codes.blood_groups(), result.value_code)
        if group:
            return clinical_codes.label(group, _lang())
    return number(_decimal(result.value)) if _is_number(result.value) else result.value


def lab_unit(result: papers.Result) -> str:
    return str(_UNITS.get(result.unit, result.unit))


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return bool(text)


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None and value != "" else None
    except ArithmeticError:
        return None


GENDERS = {"male": _l("Nam"), "female": _l("Nữ"), "other": _l("Khác"), "unknown": _l("Không rõ")}


def _context(**extra: Any) -> dict[str, Any]:
    return {"day": common.day, "number": number, "vital_name": vital_name, "vital_value": vital_value,
            "lab_name": lab_name, "lab_value": lab_value, "lab_unit": lab_unit, "directions": _directions, "route": _route, "diagnosis": _diagnosis,
            "gender": lambda g: str(GENDERS.get(g, GENDERS["unknown"])), "printed": common.day(clock.local_now().isoformat()),
            "lang": _lang(), **extra}


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in folded if c.isascii() and (c.isalnum() or c in "-_.")) or "paper"


def _pdf(body: bytes, name: str) -> Response:
    """inline, an ASCII filename and its UTF-8 name (RFC 5987 / 6266); never cached."""
    response = make_response(body)
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = f"inline; filename=\"{_ascii(name)}.pdf\"; filename*=UTF-8''{quote(name + '.pdf')}"
    response.headers["Cache-Control"] = "no-store"
    return response


_TITLES = {"prescription": "Đơn thuốc", "summary": "Tóm tắt lượt khám", "lab": "Phiếu kết quả xét nghiệm"}


def _visit_paper(encounter_id: str, kind: str) -> Response | tuple[str, int]:
    if not policy.may(common.ctx(), "search", papers.NEEDS[kind]):  # not this role's part of the record (a receptionist)
        return render_template("clinic/closed.html", patient_id=None), 403
    try:
        paper = papers.visit_paper(common.store(), common.ctx(), encounter_id, kind)
    except FhirError:  # not visible to this facility, cancelled, or gone: one answer, no oracle
        return render_template("clinic/closed.html", patient_id=None), 404
    try:
        on = date.fromisoformat(paper.started[:10])
    except ValueError:  # no start, or a partial date the API accepts ("2026-05")
        on = clock.today()
    title = _(_TITLES[kind])
    body = render.pdf(kind, p=paper, title=title, age=_age(paper.patient.birth_date, on), **_context())
    # Named by paper and date, never by the patient (download history, shared clinic PCs).
    return _pdf(body, f"{title} {on.strftime('%Y-%m-%d')}".replace(" ", "-"))


@bp.get("/visits/<encounter_id>/prescription.pdf")
@login_required(kind="staff", roles=common.STAFF)
def prescription_pdf(encounter_id: str) -> Response | tuple[str, int]:
    return _visit_paper(encounter_id, "prescription")


@bp.get("/visits/<encounter_id>/summary.pdf")
@login_required(kind="staff", roles=common.STAFF)
def summary_pdf(encounter_id: str) -> Response | tuple[str, int]:
    return _visit_paper(encounter_id, "summary")


@bp.get("/visits/<encounter_id>/lab.pdf")
@login_required(kind="staff", roles=common.STAFF)
def lab_pdf(encounter_id: str) -> Response | tuple[str, int]:
    return _visit_paper(encounter_id, "lab")


@bp.post("/patients/<patient_id>/activation-slip.pdf")
@login_required(kind="staff", roles=common.STAFF)
def activation_slip_pdf(patient_id: str) -> Response | tuple[str, int]:
    """The slip of the code the chart page has just shown (posted back by that page, CSRF-checked)."""
    try:
        slip = papers.activation_slip(common.store(), common.ctx(), patient_id, request.form.get("code", ""), now=clock.now())
    except FhirError:
        return render_template("clinic/closed.html", patient_id=patient_id), 404
    if slip is None:
        abort(410)  # not this patient's live code: issue a new one from the chart
    title = _("Phiếu kích hoạt sổ sức khỏe điện tử")
    body = render.pdf("activation", s=slip, title=title, facility=papers.facility(common.store(), common.ctx()),
                      expires=common.day(clock.local(slip.expires).isoformat()), book_url=request.host_url.rstrip("/") + url_for("auth.activate"),
                      **_context())
    return _pdf(body, f"{title} {clock.local_now().strftime('%Y-%m-%d')}".replace(" ", "-"))


@bp.errorhandler(render.PapersUnavailable)
def _cannot_print(exc: render.PapersUnavailable) -> tuple[str, int]:
    """A machine without Pango: everything works but the PDFs, which say why."""
    return render_template("error.html", status=503, message=_("Máy chủ chưa cài thư viện in (Pango): chưa in được giấy tờ.")), 503
