"""What every health-book page needs: the signed-in patient's context, the frame of the page
(whose book, the books one may switch to, the sections), and the words and formats of the page's
language (dates dd/mm/yyyy, numbers with the locale's decimal mark)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app, request
from flask_babel import format_decimal, get_locale
from flask_babel import lazy_gettext as _l

from ehr.auth.current import current_context
from ehr.fhir import healthbook as hb
from ehr.identity import clinical_codes
from ehr.services import healthbook
from ehr.services.context import AccessContext
from ehr.store.runtime import Store

SECTIONS = (
    ("healthbook.overview", _l("Tổng quan")),
    ("healthbook.administrative", _l("Thông tin hành chính")),
    ("healthbook.history", _l("Tiền sử")),
    ("healthbook.visits", _l("Các đợt khám")),
    ("healthbook.charts", _l("Biểu đồ")),
    ("healthbook.vaccinations", _l("Tiêm chủng")),
    ("healthbook.access_log", _l("Ai đã xem hồ sơ")),
    ("healthbook.sharing", _l("Chia sẻ hồ sơ")),
    ("healthbook.download", _l("Tải về")),
    ("healthbook.emergency_card", _l("Thẻ cấp cứu")),
    ("healthbook.requests", _l("Yêu cầu về dữ liệu")),
)
GENDERS = {"male": _l("Nam"), "female": _l("Nữ"), "other": _l("Khác"), "unknown": _l("Không rõ")}
CRITICALITY = {"high": _l("Nguy cơ cao"), "low": _l("Nguy cơ thấp"), "unable-to-assess": _l("Chưa đánh giá được")}
ALLERGY_CATEGORIES = {"medication": _l("Thuốc"), "food": _l("Thực phẩm"), "environment": _l("Môi trường"), "biologic": _l("Sinh phẩm")}
CLASSES = {"AMB": _l("Ngoại trú"), "IMP": _l("Nội trú"), "EMER": _l("Cấp cứu"), "VR": _l("Khám từ xa"), "HH": _l("Khám tại nhà")}
VISIT_STATUS = {"finished": _l("Đã kết thúc"), "in-progress": _l("Đang khám"), "planned": _l("Đã hẹn"), "arrived": _l("Đã đến"),
                "triaged": _l("Đã phân loại"), "onleave": _l("Tạm nghỉ"), "cancelled": _l("Đã hủy")}
MEASURES = {
    "85354-9": _l("Huyết áp"), "8480-6": _l("Huyết áp tâm thu"), "8462-4": _l("Huyết áp tâm trương"), "8867-4": _l("Mạch"),
    "8310-5": _l("Nhiệt độ"), "59408-5": _l("SpO2"), "9279-1": _l("Nhịp thở"), "8302-2": _l("Chiều cao"), "29463-7": _l("Cân nặng"),
    "39156-5": _l("Chỉ số khối cơ thể (BMI)"), "882-1": _l("Nhóm máu"),
}
SERIES = {"bp": _l("Huyết áp"), "weight": _l("Cân nặng"), "bmi": _l("Chỉ số khối cơ thể (BMI)"), "14749-6": _l("Đường huyết lúc đói"),
          "1558-6": _l("Đường huyết lúc đói"), "2345-7": _l("Đường huyết"), "4548-4": _l("HbA1c"), "17856-6": _l("HbA1c"),
          "14647-2": _l("Cholesterol toàn phần"), "2093-3": _l("Cholesterol toàn phần"),
          # vital signs, drawn on the clinic's chart
          "8867-4": _l("Mạch"), "8310-5": _l("Nhiệt độ"), "59408-5": _l("SpO2"), "9279-1": _l("Nhịp thở")}
LINES = {"8480-6": _l("Tâm thu"), "8462-4": _l("Tâm trương")}
UNITS = {"/min": _l("lần/phút"), "d": _l("ngày")}
FLAGS = {"H": _l("cao hơn bình thường"), "L": _l("thấp hơn bình thường")}


def store() -> Store:
    return current_app.extensions["ehr.store"]  # type: ignore[no-any-return]


def ctx() -> AccessContext:
    context = current_context()
    assert context is not None  # the views are behind login_required
    return context


def locale() -> str:
    return str(get_locale() or "vi")


def frame(patient_id: str, name: str | None = None) -> dict[str, Any]:
    """Whose book the page shows and the books the account may switch to (only looked up when
    the account represents someone, or the page does not know the name)."""
    context = ctx()
    if name is not None and not healthbook.represented(store(), context):
        people = [healthbook.Person(patient_id, name, True)]
    else:
        people = healthbook.people(store(), context)
    person = next((p for p in people if p.patient_id == patient_id), None)
    return {"pid": patient_id, "people": people, "person": person, "sections": SECTIONS}


class Fmt:
    """Formats and words the templates use (`f.day(...)`, `f.measure(m)`...)."""

    day = staticmethod(hb.day)
    moment = staticmethod(hb.moment)
    iso_day = staticmethod(hb.iso_day)

    @staticmethod
    def num(value: Any) -> str:
        amount = hb.number(value)
        if amount is None:
            return str(value or "")
        places = max(0, -int(amount.as_tuple().exponent)) if amount.is_finite() else 0
        return str(format_decimal(amount, format="#,##0" + ("." + "0" * min(places, 6) if places else "")))  # 6,0 stays 6,0

    @staticmethod
    def unit(code: str | None) -> str:
        return str(UNITS.get(code or "", hb.unit_symbol(code)))

    @classmethod
    def value(cls, m: hb.Measurement) -> str:
        """A measurement as the patient reads it: '138/86 mmHg', '6,6 mmol/L', 'O Rh+'."""
        if m.answer and m.code == hb.BLOOD_GROUP:
            return cls.blood_group(m)
        if "/" in m.text and m.unit == "mm[Hg]":
            return f"{m.text} {cls.unit(m.unit)}"
        if m.value is not None:
            return f"{cls.num(m.value)} {cls.unit(m.unit)}".strip()
        return m.text

    @staticmethod
    def blood_group(m: hb.Measurement | None) -> str:
        if m is None:
            return ""
        row = clinical_codes.by_code(clinical_codes.blood_groups(), m.answer or "")
        return clinical_codes.label(row, locale()) if row else m.text

    @staticmethod
    def measure(m: hb.Measurement) -> str:
        return str(MEASURES.get(m.code or "", m.name))

    @classmethod
    def range(cls, m: hb.Measurement) -> str:
        if m.low is None and m.high is None:
            return ""
        return f"{cls.num(m.low) if m.low is not None else ''}–{cls.num(m.high) if m.high is not None else ''}"

    @staticmethod
    def flag(m: hb.Measurement) -> str:
        return str(FLAGS.get(m.flag or "", ""))

    @staticmethod
    def gender(code: str) -> str:
        return str(GENDERS.get(code, code))

    @staticmethod
    def criticality(code: str | None) -> str:
        return str(CRITICALITY.get(code or "", ""))

    @staticmethod
    def allergy_category(code: str | None) -> str:
        return str(ALLERGY_CATEGORIES.get(code or "", code or ""))

    @staticmethod
    def care(visit: hb.Visit) -> str:
        kind = str(CLASSES.get(visit.class_code or "", visit.class_code or ""))
        return " · ".join(p for p in (kind, visit.care_type) if p)

    @staticmethod
    def visit_status(code: str) -> str:
        return str(VISIT_STATUS.get(code, code))

    @staticmethod
    def relationship(codes: tuple[str, ...] | str | None, text: str = "") -> str:
        wanted = (codes,) if isinstance(codes, str) else tuple(codes or ())
        rows = [clinical_codes.by_code(clinical_codes.relationships(), c) for c in wanted]
        named = [clinical_codes.label(r, locale()) for r in rows if r is not None and r.code != "GUARD"]
        return ", ".join(named) or text

    @staticmethod
    def series(s: hb.Series) -> str:
        return str(SERIES.get(s.key, s.name))

    @staticmethod
    def line(code: str, fallback: str) -> str:
        return str(LINES.get(code, fallback))

    @staticmethod
    def instant(us: int) -> str:
        return hb.moment(datetime.fromtimestamp(us / 1_000_000, tz=hb.VN))

    @staticmethod
    def here(endpoint: str) -> bool:
        return request.endpoint == endpoint
