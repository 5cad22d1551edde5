"""What every clinic page needs: the signed-in staff member's context and the store."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import current_app, session
from flask_babel import format_decimal, get_locale, gettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ehr.auth import clock
from ehr.auth.current import current_context
from ehr.healthbook.common import MEASURES
from ehr.identity import icd10
from ehr.services.context import AccessContext
from ehr.store.runtime import Store

STAFF = ("doctor", "nurse", "receptionist", "admin")
CLINICIANS = ("doctor", "nurse")
RECENT = 8

# Record item types by their Vietnamese names: pages never show FHIR type names.
KINDS = {
    "Observation": _l("Chỉ số"), "Condition": _l("Chẩn đoán"), "MedicationRequest": _l("Thuốc"), "AllergyIntolerance": _l("Dị ứng"),
    "Immunization": _l("Tiêm chủng"), "Procedure": _l("Phẫu thuật, thủ thuật"), "FamilyMemberHistory": _l("Tiền sử gia đình"),
    "Composition": _l("Tóm tắt"), "Appointment": _l("Hẹn tái khám"), "Encounter": _l("Lượt khám"),
}
VISIT_STATUS = {
    "planned": _l("Đã hẹn"), "arrived": _l("Đang chờ"), "triaged": _l("Đã gọi"), "in-progress": _l("Đang khám"),
    "onleave": _l("Tạm vắng"), "finished": _l("Đã xong"), "cancelled": _l("Đã hủy lượt"), "entered-in-error": _l("Đã hủy (nhập nhầm)"),
}


def store() -> Store:
    return current_app.extensions["ehr.store"]  # type: ignore[no-any-return]


def ctx() -> AccessContext:
    context = current_context()
    assert context is not None  # the views are behind login_required
    return context


def remember(patient_id: str) -> None:
    """Recent patients of this session (ids only), newest first."""
    recent = [p for p in session.get("recent", []) if p != patient_id]
    session["recent"] = [patient_id, *recent][:RECENT]


def day(value: str | None) -> str:
    """An ISO date or dateTime shown dd/mm/yyyy (HH:MM, in the clinic's time zone)."""
    if not value:
        return ""
    try:
        if len(value) <= 10:
            return date.fromisoformat(value).strftime("%d/%m/%Y")
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is not None:
            moment = moment.astimezone(clock.DEFAULT_ZONE)
        return moment.strftime("%d/%m/%Y %H:%M")
    except ValueError:
        return value


def text_of(concept: dict[str, Any] | None) -> str:
    if not concept:
        return ""
    coding = (concept.get("coding") or [{}])[0]
    return concept.get("text") or coding.get("display") or coding.get("code") or ""


def name_of(patient: dict[str, Any]) -> str:
    names = patient.get("name") or [{}]
    return names[0].get("text") or " ".join([names[0].get("family", ""), *names[0].get("given", [])]).strip()


def cccd_of(patient: dict[str, Any]) -> str:
    for ident in patient.get("identifier") or []:
        if str(ident.get("system", "")).endswith("/cccd"):
            return str(ident.get("value", ""))
    return ""


def local_time(micros: int) -> str:
    """A moment (µs since the epoch) as HH:MM dd/mm/yyyy in the clinic's time zone."""
    return clock.local(micros).strftime("%H:%M %d/%m/%Y")


def _amount(value: Any) -> str:
    """A typed number in the page's language ("0,5" in Vietnamese)."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    return str(format_decimal(number.normalize() if number == number.to_integral() else number, format="#,##0.###"))


def dosage_of(request: dict[str, Any]) -> str:
    """A MedicationRequest's dose, frequency, duration and quantity: "1 viên × 3 lần/ngày × 5 ngày, tổng 15"."""
    dosage = (request.get("dosageInstruction") or [{}])[0]
    repeat = (dosage.get("timing") or {}).get("repeat") or {}
    dose = ((dosage.get("doseAndRate") or [{}])[0] or {}).get("doseQuantity") or {}
    dispense = request.get("dispenseRequest") or {}
    duration = dispense.get("expectedSupplyDuration") or repeat.get("boundsDuration") or {}
    parts = []
    if dose.get("value") is not None:
        parts.append(f"{_amount(dose['value'])} {dose.get('unit') or ''}".strip())
    if repeat.get("frequency"):
        per = repeat.get("period", 1)
        parts.append(_("%(n)s lần/ngày", n=repeat["frequency"]) if repeat.get("periodUnit", "d") == "d" and str(per) == "1"
                     else f"{repeat['frequency']}/{_amount(per)} {repeat.get('periodUnit', '')}")
    if duration.get("value") is not None and duration.get("code", "d") == "d":
        parts.append(_("%(n)s ngày", n=_amount(duration["value"])))
    line = " × ".join(parts)
    quantity = (dispense.get("quantity") or {}).get("value")
    if quantity is not None:
        total = _("tổng %(n)s", n=_amount(quantity))
        line = f"{line}, {total}" if line else total
    return line


def medicine_line(request: dict[str, Any]) -> str:
    """The drug, its dosage (`dosage_of`) and the directions: one line of a medicine list."""
    name = text_of(request.get("medicationCodeableConcept")) or str((request.get("medicationReference") or {}).get("display") or "")
    directions = str(((request.get("dosageInstruction") or [{}])[0] or {}).get("text") or "")
    rest = "; ".join(p for p in (dosage_of(request), directions) if p)
    return f"{name} — {rest}" if rest else name


def diagnosis_name(concept: dict[str, Any] | None) -> str:
    """A Condition's name for staff: the ICD-10 list's name in the page's language when the
    concept carries a code of the list, otherwise the record's own text (`text_of`)."""
    for coding in (concept or {}).get("coding") or ():
        if coding.get("system") == icd10.SYSTEM:
            found = icd10.lookup(str(coding.get("code") or ""))
            if found is not None:
                return found.name(str(get_locale() or "vi"))
    return text_of(concept)


_DX_PROBLEMS = {
    "unknown": _l("Mã ICD-10 không có trong danh mục."),
    "not_main": _l("Mã này không được dùng làm chẩn đoán chính (QĐ 4469/QĐ-BYT, Phụ lục A2): ghi bệnh chính trước, mã này là bệnh kèm theo."),
    "female_only": _l("Mã này chỉ dùng cho người bệnh nữ (QĐ 4469/QĐ-BYT, Phụ lục A4)."),
    "male_only": _l("Mã này chỉ dùng cho người bệnh nam (QĐ 4469/QĐ-BYT, Phụ lục A4)."),
    "asterisk_alone": _l("Mã dấu sao (*) chỉ dùng kèm mã của bệnh nguyên nhân trong cùng lượt khám (QĐ 4469/QĐ-BYT, Phụ lục A1)."),
}


def diagnosis_problem(problem: Any) -> str:
    """The message, in the page's language, of an `ehr.identity.icd10.Problem`."""
    key = problem.message_key
    if key == "asterisk_without_dagger":
        return gettext("Mã dấu sao (*) phải đi kèm mã dấu găm (†) của bệnh nguyên nhân trong cùng lượt khám "
                       "(QĐ 4469/QĐ-BYT, Phụ lục A1), ví dụ %(codes)s.", codes=", ".join(problem.daggers))
    if key == "age":
        unit_days = problem.unit == "d"
        if problem.low is not None and problem.high is not None:
            text = (gettext("từ %(low)s đến %(high)s ngày tuổi", low=problem.low, high=problem.high) if unit_days
                    else gettext("từ %(low)s đến %(high)s tuổi", low=problem.low, high=problem.high))
        elif problem.low is not None:
            text = (gettext("từ %(low)s ngày tuổi trở lên", low=problem.low) if unit_days
                    else gettext("từ %(low)s tuổi trở lên", low=problem.low))
        else:
            text = (gettext("đến %(high)s ngày tuổi", high=problem.high) if unit_days
                    else gettext("đến %(high)s tuổi", high=problem.high))
        return gettext("Mã này không phù hợp với tuổi của người bệnh: chỉ dùng cho người bệnh %(ages)s "
                       "(QĐ 4469/QĐ-BYT, Phụ lục %(appendix)s).", ages=text, appendix=problem.appendix)
    return str(_DX_PROBLEMS.get(key, _DX_PROBLEMS["unknown"]))


def measure_name(concept: dict[str, Any] | None) -> str:
    """A measurement's name in the page's language (vital signs, blood group: the health book's
    names of their LOINC codes), not the LOINC English display; otherwise the record's text."""
    for coding in (concept or {}).get("coding") or ():
        name = MEASURES.get(str(coding.get("code") or ""))
        if name is not None:
            return str(name)
    return text_of(concept)
