"""Recording a visit, showing and signing it."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from flask import current_app, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from ehr.auth import clock
from ehr.auth.current import login_required
from ehr.clinic import bp, common, forms
from ehr.fhir import visit as v
from ehr.fhir.outcomes import FhirError
from ehr.identity import clinical_codes, icd10
from ehr.services import chart, policy, signing, visits

CLASSES = {"AMB": _l("Ngoại trú"), "IMP": _l("Nội trú"), "EMER": _l("Cấp cứu"), "VR": _l("Khám từ xa"), "HH": _l("Khám tại nhà")}


def _blood_groups() -> dict[str, str]:
    """LOINC answer codes of 882-1 (verified list LL2972-9) and their Vietnamese names."""
    return {g.code: clinical_codes.label(g, str(get_locale() or "vi")) for g in clinical_codes.blood_groups()}


def _history_choices() -> dict[str, list[tuple[str, str]]]:
    lang = str(get_locale() or "vi")
    return {
        "vaccines": [(x.code, clinical_codes.label(x, lang)) for x in clinical_codes.vaccines()],
        "sites": [(x.code, clinical_codes.label(x, lang)) for x in clinical_codes.sites()],
        "relationships": [(x.code, clinical_codes.label(x, lang)) for x in clinical_codes.relationships()],
    }


def _routes() -> dict[str, str]:
    return {r.code: clinical_codes.label(r, str(get_locale() or "vi")) for r in clinical_codes.routes()}


def _decimal(value: Any) -> Decimal | None:
    return Decimal(str(value)) if value is not None else None


def _visit(patient_id: str, data: dict[str, Any], form: Any, errors: dict[str, list[str]]) -> v.Visit | None:
    ctx = common.ctx()
    diagnoses = []
    for i, row in enumerate(forms.rows(form, "dx", ("code",))):
        problem = icd10.check(row["code"])
        found = icd10.lookup(row["code"]) if problem is None else None
        if found is None:
            errors[f"dx-{i}-code"] = [_("Mã ICD-10 không có trong danh mục.")]
        else:
            diagnoses.append(v.Diagnosis(found.code, found.display))
    prescriptions = []
    for i, row in enumerate(forms.rows(form, "rx", ("drug", "dose", "unit", "route", "frequency", "days", "quantity", "instructions"))):
        try:
            frequency = int(row["frequency"] or 0)
            days = int(row["days"]) if row["days"] else None
            quantity = Decimal(row["quantity"]) if row["quantity"] else None
            dose = Decimal(row["dose"]) if row["dose"] else None
        except (ValueError, ArithmeticError):
            errors[f"rx-{i}-drug"] = [_("Liều, số lần, số ngày và số lượng phải là số.")]
            continue
        if not row["drug"] or not 1 <= frequency <= 12 or (days is not None and not 1 <= days <= 365):
            errors[f"rx-{i}-drug"] = [_("Nhập tên thuốc, số lần dùng mỗi ngày (1-12) và số ngày (1-365).")]
            continue
        route = clinical_codes.by_code(clinical_codes.routes(), row["route"]) if row["route"] else None
        prescriptions.append(v.Prescription(row["drug"], dose, row["unit"] or None, route.code if route else None, route.display if route else None,
                                            frequency, days, quantity, row["instructions"] or None))
    allergies = [v.Allergy(r["substance"], r["criticality"] or None, r["reaction"] or None)
                 for r in forms.rows(form, "al", ("substance", "criticality", "reaction")) if r["substance"]]
    vaccinations = []
    for i, row in enumerate(forms.rows(form, "im", ("vaccine", "lot", "site", "date"))):
        vaccine = clinical_codes.by_code(clinical_codes.vaccines(), row["vaccine"])
        site = clinical_codes.by_code(clinical_codes.sites(), row["site"]) if row["site"] else None
        given = forms.parse_day(row["date"]) if row["date"] else clock.today()
        if vaccine is None or given is None or given > clock.today():
            errors[f"im-{i}-vaccine"] = [_("Chọn vắc xin và ngày tiêm (không sau hôm nay).")]
            continue
        vaccinations.append(v.Vaccination(vaccine.code, vaccine.display, given, row["lot"] or None,
                                          site.code if site else None, site.display if site else None,
                                          site.system if site else v.ACT_SITE))
    procedures = []
    for i, row in enumerate(forms.rows(form, "pr", ("text", "date"))):
        performed = forms.parse_day(row["date"]) if row["date"] else None
        if not row["text"] or (row["date"] and performed is None):
            errors[f"pr-{i}-text"] = [_("Nhập tên phẫu thuật/thủ thuật và ngày theo dạng dd/mm/yyyy.")]
            continue
        procedures.append(v.PastProcedure(row["text"], performed))
    family = []
    for i, row in enumerate(forms.rows(form, "fh", ("relationship", "condition"))):
        relation = clinical_codes.by_code(clinical_codes.relationships(), row["relationship"])
        if relation is None or not row["condition"]:
            errors[f"fh-{i}-condition"] = [_("Chọn quan hệ và nhập bệnh của người thân.")]
            continue
        family.append(v.FamilyHistory(relation.code, relation.display, row["condition"]))
    if errors:
        return None
    vitals = {k: data[k] for k in ("systolic", "diastolic", "heart_rate", "temperature", "spo2", "respiratory_rate", "height", "weight")
              if data.get(k) is not None}
    group = data.get("blood_group")
    return v.Visit(
        patient_id=patient_id, organization_id=ctx.organization or "", token=data["token"], started=clock.local_now(),
        class_code=data["class_code"], class_display=str(CLASSES.get(data["class_code"], data["class_code"])), reason=data["reason"],
        vitals={k: Decimal(str(val)) for k, val in vitals.items()},
        blood_group=(group, blood.display) if (blood := clinical_codes.by_code(clinical_codes.blood_groups(), group or "")) else None,
        diagnoses=diagnoses, allergies=allergies, prescriptions=prescriptions, vaccinations=vaccinations,
        procedures=procedures, family=family,
        note=data.get("note"), advice=data.get("advice"), revisit=data.get("revisit"),
    )


@bp.route("/patients/<patient_id>/visits/new", methods=["GET", "POST"])
@login_required(kind="staff", roles=common.CLINICIANS)
def new_visit(patient_id: str) -> Response | str | tuple[str, int]:
    try:
        patient = chart.patient(common.store(), common.ctx(), patient_id)
    except FhirError:
        return render_template("clinic/closed.html", patient_id=patient_id), 404
    values: dict[str, Any] = {"token": str(uuid.uuid4()), "class_code": "AMB"}
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        values = {k: v_ for k, v_ in request.form.items() if k != "csrf_token"}
        data, errors = forms._load(forms.VisitSchema(), forms._blank_to_none(request.form))
        visit = _visit(patient_id, data or {}, request.form, errors) if data is not None else None
        if visit is not None:
            try:
                encounter_id = visits.record(common.store(), common.ctx(), visit)
            except FhirError as exc:
                errors = {"form": [_("Không lưu được: %(reason)s", reason=exc.issues[0].diagnostics if exc.issues else exc.status)]}
            else:
                return redirect(url_for("clinic.visit", encounter_id=encounter_id))
        status = 422
    else:
        status = 200
    return render_template("clinic/visit_form.html", patient=patient, patient_id=patient_id, values=values, errors=errors,
                           classes=CLASSES, blood_groups=_blood_groups(), routes=_routes(), common=common, **_history_choices()), status


@bp.get("/visits/<encounter_id>")
@login_required(kind="staff", roles=common.STAFF)
def visit(encounter_id: str) -> str | tuple[str, int]:
    try:
        encounter, items, signature = chart.visit(common.store(), common.ctx(), encounter_id)
    except FhirError:
        return render_template("clinic/closed.html", patient_id=None), 404
    report = None
    if signature and policy.may(common.ctx(), "read", "Provenance"):
        report = signing.verify(common.store(), common.ctx(), current_app.extensions["ehr.signing"], signature)
    patient_id = ((encounter.get("subject") or {}).get("reference") or "/").split("/", 1)[1]
    return render_template("clinic/visit.html", encounter=encounter, items=items, signature=signature, report=report,
                           patient_id=patient_id, classes=CLASSES, common=common)


@bp.post("/visits/<encounter_id>/sign")
@login_required(kind="staff", roles=("doctor",))
def sign(encounter_id: str) -> Response | tuple[str, int]:
    try:
        signing.sign_visit(common.store(), common.ctx(), current_app.extensions["ehr.signing"], encounter_id)
    except FhirError as exc:
        if exc.status != 409:
            raise
    return redirect(url_for("clinic.visit", encounter_id=encounter_id))


@bp.get("/icd10")
@login_required(kind="staff", roles=common.STAFF)
def icd10_search() -> dict[str, Any]:
    """The diagnosis picker's suggestions (code and name), for the typed text."""
    found = icd10.search(request.args.get("q", ""), limit=15)
    return {"items": [{"code": d.code, "display": d.display} for d in found]}
