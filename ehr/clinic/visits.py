"""Recording a visit, showing and signing it."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import replace
from decimal import Decimal
from typing import Any

from flask import current_app, g, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from ehr.auth import clock, drafts
from ehr.auth.current import login_required
from ehr.clinic import bp, common, forms, visit_values
from ehr.fhir import corrections, drug_classes
from ehr.fhir import visit as v
from ehr.fhir.terminology import ICD10
from ehr.fhir.outcomes import FhirError
from ehr.healthbook.common import CLASSES  # the types of care, by their Vietnamese names
from ehr.identity import clinical_codes, icd10
from ehr.services import catalogue, chart, policy, practitioners, prescribing, signing, visits



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


# What each role records on the visit form (the rest of the form is not shown to it): a nurse
# takes vital signs, allergies, vaccinations and a nursing note; doctors record everything.
SECTIONS = {
    "doctor": frozenset({"vitals", "diagnoses", "prescriptions", "allergies", "vaccinations", "procedures", "family", "note", "advice"}),
    "nurse": frozenset({"vitals", "allergies", "vaccinations", "note"}),
}
_SECTION_FIELDS = {"diagnoses": ("dx-",), "prescriptions": ("rx-",), "procedures": ("pr-",), "family": ("fh-",),
                   "advice": ("advice", "revisit"), "allergies": ("al-",), "vaccinations": ("im-",), "note": ("note",)}


def _sections() -> frozenset[str]:
    return SECTIONS.get(common.ctx().role or "", frozenset())


def _outside_role(form: Any) -> bool:
    """Whether the form carries values for a part of the visit the signed-in role does not record."""
    allowed = _sections()
    prefixes = tuple(p for section, ps in _SECTION_FIELDS.items() if section not in allowed for p in ps)
    return any(str(value).strip() for key, value in form.items() if key.startswith(prefixes)) if prefixes else False


def _author() -> v.Author | None:
    clinician = practitioners.for_account(common.store(), common.ctx())
    return v.Author(clinician.practitioner_id, clinician.role_id, clinician.name) if clinician else None


def _visit(patient_id: str, data: dict[str, Any], form: Any, errors: dict[str, list[str]],
           encounter: tuple[dict[str, Any], str] | None = None, replaces: list[dict[str, Any]] | None = None) -> v.Visit | None:
    ctx = common.ctx()
    if _outside_role(form):
        errors["form"] = [_("Vai trò của bạn chỉ ghi dấu hiệu sinh tồn, dị ứng, tiêm chủng và ghi chú; chẩn đoán và kê đơn do bác sĩ ghi.")]
        return None
    forms.check_rows(form, errors)  # every free-text row field within its FHIR element's limit
    replaced = frozenset(str(d.get("id")) for d in replaces or [])
    current = chart.lists(common.store(), ctx, patient_id)
    coded = []  # (form row, catalogue entry), main diagnosis first
    for i, row in forms.rows(form, "dx", ("code",)):
        problem = icd10.check(row["code"])
        found = icd10.lookup(row["code"]) if problem is None else None
        if found is None:
            errors[f"dx-{i}-code"] = [_("Mã ICD-10 không có trong danh mục.")]
        else:
            coded.append((i, found))
    if coded:  # QĐ 4469's validity rules: main diagnosis, the patient's sex and age, dagger/asterisk pairs
        patient = chart.patient(common.store(), ctx, patient_id)
        age_days, age_years = icd10.age(patient.get("birthDate"), clock.today())  # (None, None) unless a full date
        for p in icd10.validate([d.code for _i, d in coded], patient.get("gender"), age_days, age_years):
            errors.setdefault(f"dx-{coded[p.index][0]}-code", []).append(common.diagnosis_problem(p))
    # The Condition carries the catalogue's Vietnamese name (display and text) and the list's version.
    diagnoses = [v.Diagnosis(d.code, d.display_vi, current.problem_with(d.code, replaced), d.version) for _i, d in coded]
    lines = []
    for i, row in forms.rows(form, "rx", ("drug", "dose", "unit", "route", "frequency", "days", "quantity", "instructions")):
        try:
            frequency = int(row["frequency"] or 0)
            days = int(row["days"]) if row["days"] else None
            quantity = _number(row["quantity"])  # "1,5" as well as "1.5"
            dose = _number(row["dose"])
        except (ValueError, ArithmeticError):
            errors[f"rx-{i}-drug"] = [_("Liều, số lần, số ngày và số lượng phải là số.")]
            continue
        if not row["drug"] or not 1 <= frequency <= 12 or (days is not None and not 1 <= days <= 365):
            errors[f"rx-{i}-drug"] = [_("Nhập tên thuốc, số lần dùng mỗi ngày (1-12) và số ngày (1-365).")]
            continue
        route = clinical_codes.by_code(clinical_codes.routes(), row["route"]) if row["route"] else None
        lines.append((i, v.Prescription(row["drug"], dose, row["unit"] or None, route.code if route else None, route.display if route else None,
                                        frequency, days, quantity, row["instructions"] or None,
                                        coded=_coded(str(form.get(f"rx-{i}-code", "")).strip(), row["drug"]))))
    # Allergy, duplicate, duration and quantity checks: a warning is shown on its line and the line
    # is recorded only with an explicit override and its reason (a DetectedIssue in the record).
    prescriptions = _checked(patient_id, lines, form, errors, current, replaced)
    # An allergy the patient's list already holds is not written again (one list per patient).
    allergies = [v.Allergy(r["substance"], r["criticality"] or None, r["reaction"] or None)
                 for _i, r in forms.rows(form, "al", ("substance", "criticality", "reaction"))
                 if r["substance"] and not current.has_allergy(r["substance"], replaced)]
    vaccinations = []
    for i, row in forms.rows(form, "im", ("vaccine", "lot", "site", "date")):
        vaccine = clinical_codes.by_code(clinical_codes.vaccines(), row["vaccine"])
        site = clinical_codes.by_code(clinical_codes.sites(), row["site"]) if row["site"] else None
        given = forms.check_day(errors, f"im-{i}-date", _("Ngày tiêm"), row["date"]) if row["date"] else clock.today()
        if given is None:
            continue  # "31/02/2026 is not a real date" is on the date field
        if vaccine is None or given > clock.today():
            errors[f"im-{i}-vaccine"] = [_("Chọn vắc xin và ngày tiêm (không sau hôm nay).")]
            continue
        vaccinations.append(v.Vaccination(vaccine.code, vaccine.display, given, row["lot"] or None,
                                          site.code if site else None, site.display if site else None,
                                          site.system if site else v.ACT_SITE))
    procedures = []
    for i, row in forms.rows(form, "pr", ("text", "date")):
        performed = forms.check_day(errors, f"pr-{i}-date", _("Ngày"), row["date"]) if row["date"] else None
        if row["date"] and performed is None:
            continue
        if not row["text"]:
            errors[f"pr-{i}-text"] = [_("Nhập tên phẫu thuật/thủ thuật và ngày theo dạng dd/mm/yyyy.")]
            continue
        procedures.append(v.PastProcedure(row["text"], performed))
    family = []
    for i, row in forms.rows(form, "fh", ("relationship", "condition")):
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
        author=_author(), encounter=encounter[0] if encounter else None, encounter_version=encounter[1] if encounter else None,
        replaces=replaces or [],
    )


# --- prescribing checks (issue 15) ------------------------------------------------------------------
# (Imported where used: the module's import block is shared with the other parts of this form.)


def _number(text: str) -> Decimal | None:
    """A number typed with a decimal comma or point ("1,5" or "1.5"); None when blank."""
    if not text:
        return None
    value = Decimal(text.strip().replace(",", "."))
    if not value.is_finite():
        raise ValueError("not a number")
    return value


def _coded(code: str, text: str) -> v.CodedDrug | None:
    """The catalogue drug the picker chose (hidden rx-{i}-code), when the line still names it; None
    for free text (recorded as text only, "chưa mã hóa")."""
    if not code:
        return None
    store = common.store()
    drug = catalogue.get(store, "drugs", code)
    coding = catalogue.coding(store, "drugs", code)
    if drug is None or coding is None or drug_classes.fold(str(drug.name)) not in drug_classes.fold(text):
        return None  # not in the active list, or the text was changed after picking: free text
    return v.CodedDrug(coding["system"], coding["code"], coding["display"], coding.get("version"), getattr(drug, "ingredient", None) or None,
                       getattr(drug, "ingredient_code", None) or None, prescribing.INGREDIENT_SYSTEM)


def _warning_text(warning: Any) -> str:
    """A prescribing warning in the page's language (`prescribing.MESSAGES` are msgids)."""
    text = _(prescribing.MESSAGES[warning.code], **warning.params)
    return f"{_('Dị ứng nguy cơ cao')}: {text}" if warning.high else text


def _signature(warnings: list[Any]) -> str:
    """What an override box stands for: these warnings (a changed line brings new ones to confirm)."""
    found = "|".join(sorted(f"{w.code}:{w.implicated or ''}:{sorted(w.params.items())}" for w in warnings))
    return hashlib.sha256(found.encode()).hexdigest()[:16]


def _checked(patient_id: str, lines: list[tuple[int, v.Prescription]], form: Any, errors: dict[str, list[str]],
             current: chart.Lists, replaced: frozenset[str]) -> list[v.Prescription]:
    """The prescription lines to record: a line with warnings only with its override ticked and a
    reason (5-500 characters), which becomes the line's `Override`; otherwise `errors` say why.
    The warnings are kept on `g` for the form (`_prescribing_page`)."""
    typed = [v.Allergy(r["substance"], r["criticality"] or None) for _i, r in forms.rows(form, "al", ("substance", "criticality"))
             if r["substance"] and not current.has_allergy(r["substance"], replaced)]  # typed on this same form: checked too
    found = prescribing.check(common.store(), common.ctx(), patient_id, lines, lists=current, today=clock.today(), skip=replaced,
                              token=str(form.get("token", "")).strip() or None, new_allergies=typed)
    shown: dict[int, tuple[list[Any], str]] = {}
    out = []
    for i, rx in lines:
        mine = [w for w in found if w.index == i]
        hard, soft = [w for w in mine if w.hard], [w for w in mine if not w.hard]
        if hard:
            errors[f"rx-{i}-quantity"] = [_warning_text(w) for w in hard]
        if not soft:
            out.append(rx)
            continue
        signature = _signature(soft)
        shown[i] = (soft, signature)
        reason = str(form.get(f"rx-{i}-override_reason", "")).strip()
        if str(form.get(f"rx-{i}-override", "")).strip() != signature:
            errors[f"rx-{i}-drug"] = [*(_warning_text(w) for w in soft),
                                      _("Sửa dòng thuốc, hoặc đánh dấu “Vẫn kê đơn” và ghi lý do.")]
            continue
        if not 5 <= len(reason) <= 500:
            errors[f"rx-{i}-override_reason"] = [_("Lý do vẫn kê đơn: nhập từ 5 đến 500 ký tự.")]
            continue
        out.append(replace(rx, override=v.Override(reason, tuple(w.issue() for w in soft))))
    g.rx_warnings = shown
    return out


def _prescribing_page(patient_id: str) -> dict[str, Any]:
    """What the prescriptions part of the form shows: the patient's active allergies and current
    medicines, and the warnings of the posted lines with their override boxes."""
    if "prescriptions" not in _sections():
        return {}
    store, ctx = common.store(), common.ctx()
    found = chart.lists(store, ctx, patient_id)
    return {
        "rx_allergies": [(common.text_of(a.get("code")), a.get("criticality")) for a in found.allergies],
        "rx_current": [common.medicine_line(m) for m in prescribing.current_medicines(store, ctx, patient_id, clock.today())],
        "rx_warnings": {i: ([_warning_text(w) for w in ws], signature) for i, (ws, signature) in (g.get("rx_warnings") or {}).items()},
    }


def _form(patient: dict[str, Any], patient_id: str, values: dict[str, Any], errors: dict[str, list[str]], status: int,
          action: str, editing: bool = False) -> tuple[str, int]:
    return render_template("clinic/visit_form.html", patient=patient, patient_id=patient_id, values=values, errors=errors,
                           classes=CLASSES, blood_groups=_blood_groups(), routes=_routes(), common=common, action=action,
                           sections=_sections(), editing=editing, **_history_choices(), **_prescribing_page(patient_id)), status


def _save(patient_id: str, queued: tuple[dict[str, Any], str] | None, replaces: list[dict[str, Any]] | None,
          errors: dict[str, list[str]]) -> Response | None:
    """Check and write the posted form; a redirect to the visit, or None with `errors` filled."""
    data, found = forms._load(forms.VisitSchema(), forms._blank_to_none(request.form))
    errors.update(found)
    visit = _visit(patient_id, data or {}, request.form, errors, queued, replaces) if data is not None else None
    if visit is None:
        return None
    visit.diagnoses_recorded = "diagnoses" in _sections()
    try:
        encounter_id = visits.record(common.store(), common.ctx(), visit)
    except FhirError as exc:
        errors["form"] = [_("Không lưu được: %(reason)s", reason=exc.issues[0].diagnostics if exc.issues else exc.status)]
        return None
    return redirect(url_for("clinic.visit", encounter_id=encounter_id))


@bp.route("/patients/<patient_id>/visits/new", methods=["GET", "POST"])
@login_required(kind="staff", roles=common.CLINICIANS)
def new_visit(patient_id: str) -> Response | str | tuple[str, int]:
    try:
        patient = chart.patient(common.store(), common.ctx(), patient_id)
    except FhirError:
        return render_template("clinic/closed.html", patient_id=patient_id), 404
    queued = None
    encounter_id = (request.values.get("encounter") or "").strip()
    if encounter_id:  # the patient's turn in today's queue: the visit is recorded into that Encounter
        try:
            queued = visits.open_encounter(common.store(), common.ctx(), encounter_id)
        except FhirError as exc:
            return render_template("clinic/closed.html", patient_id=patient_id, reason=exc.status), 409 if exc.status == 409 else 404
        if ((queued[0].get("subject") or {}).get("reference")) != f"Patient/{patient_id}":
            return render_template("clinic/closed.html", patient_id=patient_id), 404
    values: dict[str, Any] = {"token": str(uuid.uuid4()), "class_code": "AMB"}
    if request.method == "GET":  # what was typed when the session ended, its token included (ehr.auth.drafts)
        values = drafts.take(request.path) or values
    if queued:
        values["encounter"] = encounter_id
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        values = {k: v_ for k, v_ in request.form.items() if k != "csrf_token"}
        done = _save(patient_id, queued, None, errors)
        if done is not None:
            return done
        status = 422
    else:
        status = 200
    return _form(patient, patient_id, values, errors, status, url_for("clinic.new_visit", patient_id=patient_id))


def _own_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What an edit by the signed-in role replaces: only the parts of the visit that role records."""
    allowed = _sections()
    kinds = {"Observation": "vitals", "Condition": "diagnoses", "MedicationRequest": "prescriptions", "AllergyIntolerance": "allergies",
             "Immunization": "vaccinations", "Procedure": "procedures", "FamilyMemberHistory": "family", "Appointment": "advice"}
    out = []
    for doc in visit_values.replaced(items):
        kind = doc.get("resourceType", "")
        if kind == "Composition":
            # One summary holds the note and the advice: only a role that records both replaces it.
            if {"note", "advice"} <= allowed:
                out.append(doc)
        elif kinds.get(kind) in allowed:
            out.append(doc)
    return out


@bp.route("/visits/<encounter_id>/edit", methods=["GET", "POST"])
@login_required(kind="staff", roles=common.CLINICIANS)
def edit_visit(encounter_id: str) -> Response | str | tuple[str, int]:
    """Correct an unsigned visit: the form again, filled in; saving replaces what it shows."""
    store, ctx = common.store(), common.ctx()
    try:
        encounter, items, signature = chart.visit(store, ctx, encounter_id)
        if signature:
            return redirect(url_for("clinic.amend_visit", encounter_id=encounter_id))
        queued = visits.open_encounter(store, ctx, encounter_id)
        patient_id = ((encounter.get("subject") or {}).get("reference") or "/").split("/", 1)[1]
        patient = chart.patient(store, ctx, patient_id)
    except FhirError as exc:
        return render_template("clinic/closed.html", patient_id=None), 409 if exc.status == 409 else 404
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        values = {k: v_ for k, v_ in request.form.items() if k != "csrf_token"}
        done = _save(patient_id, queued, _own_items(items), errors)
        if done is not None:
            return done
        status = 422
    else:  # what was typed when the session ended (ehr.auth.drafts), or the visit as recorded
        values = drafts.take(request.path) or {**visit_values.values_of(encounter, items), "token": str(uuid.uuid4())}
        status = 200
    return _form(patient, patient_id, values, errors, status, url_for("clinic.edit_visit", encounter_id=encounter_id), editing=True)


@bp.post("/visits/<encounter_id>/cancel")
@login_required(kind="staff", roles=("doctor",))
def cancel_visit(encounter_id: str) -> Response | tuple[str, int]:
    """Cancel an unsigned visit (entered in error): kept for staff, gone from the health book."""
    store, ctx = common.store(), common.ctx()
    try:
        encounter, items, signature = chart.visit(store, ctx, encounter_id)
        if signature:
            return redirect(url_for("clinic.amend_visit", encounter_id=encounter_id))
        queued, _version = visits.open_encounter(store, ctx, encounter_id)
        visits.cancel(store, ctx, queued, items)
    except FhirError as exc:
        return render_template("clinic/closed.html", patient_id=None), 409 if exc.status == 409 else 404
    return redirect(url_for("clinic.visit", encounter_id=encounter_id))


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
    clinicians = [str((p.get("individual") or {}).get("display")) for p in encounter.get("participant") or []
                  if (p.get("individual") or {}).get("display")]
    refs = {f"{d.get('resourceType')}/{d.get('id')}" for d in items}
    changes = chart.amendments(common.store(), common.ctx(), patient_id, refs) if signature else []
    return render_template("clinic/visit.html", encounter=encounter, items=items, signature=signature, report=report,
                           patient_id=patient_id, classes=CLASSES, common=common, kinds=common.KINDS, statuses=common.VISIT_STATUS,
                           clinicians=clinicians, amendments=changes, amended=bool(request.args.get("amended")))


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
    """The diagnosis picker's suggestions for the typed text: the code, the name in the page's
    language (`display`), both names and the list's version."""
    found = icd10.search(request.args.get("q", "")[:100], limit=15)
    lang = str(get_locale() or "vi")
    return {"version": icd10.VERSION,
            "items": [{"code": d.code, "display": d.name(lang), "display_vi": d.display_vi, "display_en": d.display_en}
                      for d in found]}


@bp.route("/visits/<encounter_id>/amend", methods=["GET", "POST"])
@login_required(kind="staff", roles=("doctor",))
def amend_visit(encounter_id: str) -> Response | str | tuple[str, int]:
    """Correct a signed visit, one item per submission: a diagnosis recoded, or an item marked
    entered in error; each a new version with its own signature and the reason; the old one stays."""
    store, ctx = common.store(), common.ctx()
    try:
        encounter, items, signature = chart.visit(store, ctx, encounter_id)
    except FhirError:
        return render_template("clinic/closed.html", patient_id=None), 404
    if not signature:
        return redirect(url_for("clinic.edit_visit", encounter_id=encounter_id))
    errors: dict[str, list[str]] = {}
    values: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        values = {k: str(v_).strip() for k, v_ in request.form.items() if k != "csrf_token"}
        target = next((d for d in items if f"{d.get('resourceType')}/{d.get('id')}" == values.get("item")), None)
        doc = _amended(target, values, errors) if target else None
        if target is None:
            errors["form"] = [_("Không tìm thấy mục cần sửa trong lượt khám này.")]
        if doc is not None:
            try:
                signing.amend(store, ctx, current_app.extensions["ehr.signing"], target["resourceType"], target["id"], doc,
                              reason=values["reason"])
            except FhirError as exc:
                errors["form"] = [_("Không lưu được: %(reason)s", reason=exc.issues[0].diagnostics if exc.issues else exc.status)]
            else:
                return redirect(url_for("clinic.visit", encounter_id=encounter_id, amended=1))
        status = 422
    patient_id = ((encounter.get("subject") or {}).get("reference") or "/").split("/", 1)[1]
    return render_template("clinic/amend.html", encounter=encounter, items=[d for d in items if not corrections.is_error(d)],
                           patient_id=patient_id, values=values, errors=errors, common=common, kinds=common.KINDS), status


def _amended(target: dict[str, Any], values: dict[str, str], errors: dict[str, list[str]]) -> dict[str, Any] | None:
    """The corrected resource for the posted amendment, or None with `errors` filled."""
    key = f"{target['resourceType']}/{target['id']}"
    if not 5 <= len(values.get("reason", "")) <= 500:
        errors[f"reason-{key}"] = [_("Lý do sửa đổi: nhập từ 5 đến 500 ký tự.")]
    if values.get("action") == "error":
        return None if errors else corrections.entered_in_error(target)
    if target["resourceType"] != "Condition":
        errors["form"] = [_("Chỉ chẩn đoán được sửa mã; mục khác được đánh dấu nhập nhầm.")]
        return None
    found = icd10.lookup(values.get("code", "")) if icd10.check(values.get("code", "")) is None else None
    if found is None:
        errors[f"code-{key}"] = [_("Mã ICD-10 không có trong danh mục.")]
    if errors or found is None:
        return None
    doc = {k: val for k, val in target.items() if k != "meta"}
    doc["code"] = {"coding": [{"system": ICD10, "code": found.code, "display": found.display}], "text": found.display}
    return doc
