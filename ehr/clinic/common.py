"""What every clinic page needs: the signed-in staff member's context and the store."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import current_app, session
from flask_babel import lazy_gettext as _l

from ehr.auth import clock
from ehr.auth.current import current_context
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
