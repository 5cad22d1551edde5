"""The clinic's forms as marshmallow schemas: each error names its field, in the page's language.

A page posts flat HTML fields; `load` returns typed values or {field: [messages]}, and the page is
shown again with everything typed kept. Repeating rows (diagnoses, prescriptions, ...) are numbered
fields (`dx-0-code`, `rx-1-drug`) gathered by `rows`.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Mapping

from flask_babel import lazy_gettext as _l
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates, validates_schema

from ehr.auth import clock
from ehr.fhir.terminology import VITAL_SIGNS
from ehr.identity import codetables, rules

REQUIRED = {"required": _l("Bắt buộc nhập."), "null": _l("Bắt buộc nhập."), "invalid": _l("Giá trị không hợp lệ.")}
NUMBER = {**REQUIRED, "invalid": _l("Nhập một số.")}
DAY = {**REQUIRED, "invalid": _l("Nhập ngày theo dạng dd/mm/yyyy.")}


class DayField(fields.Field):
    """A date typed dd/mm/yyyy (Vietnamese) or yyyy-mm-dd (a browser's date input)."""

    default_error_messages = {"invalid": _l("Nhập ngày theo dạng dd/mm/yyyy.")}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> date:
        text = str(value).strip()
        try:
            if "/" in text:
                d, m, y = (int(p) for p in text.split("/"))
                return date(y, m, d)
            return date.fromisoformat(text)
        except (ValueError, TypeError):
            raise self.make_error("invalid") from None


def parse_day(text: str) -> date | None:
    """dd/mm/yyyy or yyyy-mm-dd, None when it is not a real date."""
    try:
        return DayField().deserialize(text)
    except ValidationError:
        return None


def _blank_to_none(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.strip() if isinstance(v, str) else v) for k, v in data.items() if not (isinstance(v, str) and not v.strip())}


class RegisterSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    cccd = fields.String(required=True, error_messages=REQUIRED)
    full_name = fields.String(required=True, validate=validate.Length(min=2, max=200, error=_l("Họ tên từ 2 đến 200 ký tự.")), error_messages=REQUIRED)
    birth_date = DayField(required=True, error_messages=DAY)
    gender = fields.String(required=True, validate=validate.OneOf(["male", "female", "unknown"], error=_l("Chọn giới tính.")), error_messages=REQUIRED)
    ethnicity = fields.String(load_default=None)
    nationality = fields.String(load_default="VN")
    occupation = fields.String(load_default=None)
    phone = fields.String(load_default=None, validate=validate.Regexp(r"^\+?[0-9 .]{8,15}$", error=_l("Số điện thoại không hợp lệ.")))
    address_line = fields.String(load_default=None)
    province = fields.String(load_default=None)
    commune = fields.String(load_default=None)
    bhyt = fields.String(load_default=None)
    rep_name = fields.String(load_default=None)
    rep_relationship = fields.String(load_default=None)
    rep_phone = fields.String(load_default=None)

    @validates("cccd")
    def _cccd(self, value: str, **_: Any) -> None:
        try:
            rules.check_cccd(value)
        except rules.IdentifierError:
            raise ValidationError(str(_l("Số CCCD phải có đúng 12 chữ số."))) from None

    @validates("birth_date")
    def _born(self, value: date, **_: Any) -> None:
        if value > clock.today() or value.year < 1890:
            raise ValidationError(str(_l("Ngày sinh không hợp lệ.")))

    @validates("ethnicity")
    def _ethnicity(self, value: str | None, **_: Any) -> None:
        if value and value not in codetables.ethnic_groups():
            raise ValidationError(str(_l("Chọn dân tộc trong danh mục.")))

    @validates("bhyt")
    def _bhyt(self, value: str | None, **_: Any) -> None:
        if value:
            try:
                rules.parse_bhyt(value)
            except rules.IdentifierError:
                raise ValidationError(str(_l("Mã thẻ BHYT không hợp lệ (15 ký tự, 10 chữ số mã BHXH hoặc số CCCD)."))) from None

    @validates_schema
    def _address(self, data: dict[str, Any], **_: Any) -> None:
        commune = data.get("commune")
        if commune:
            known = codetables.communes().get(commune)
            if known is None or (data.get("province") and known.province_code != data["province"]):
                raise ValidationError(str(_l("Xã/phường không thuộc tỉnh/thành phố đã chọn.")), "commune")
        if data.get("province") and data["province"] not in codetables.provinces():
            raise ValidationError(str(_l("Chọn tỉnh/thành phố trong danh mục.")), "province")

    def load_form(self, form: Mapping[str, Any]) -> tuple[dict[str, Any] | None, dict[str, list[str]]]:
        return _load(self, _blank_to_none(form))


def _load(schema: Schema, data: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, list[str]]]:
    try:
        return schema.load(data), {}
    except ValidationError as exc:
        errors = exc.normalized_messages()
        return None, {k: [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in errors.items()}  # type: ignore[union-attr]


def _vital_field(key: str) -> fields.Decimal:
    sign = VITAL_SIGNS[key]
    message = _l("Giá trị phải từ %(low)s đến %(high)s.", low=f"{sign.low:g}", high=f"{sign.high:g}")
    return fields.Decimal(load_default=None, places=None, validate=validate.Range(sign.low, sign.high, error=message), error_messages=NUMBER)


class VisitSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    class_code = fields.String(load_default="AMB", validate=validate.OneOf(["AMB", "IMP", "EMER", "VR", "HH"]))
    reason = fields.String(required=True, validate=validate.Length(min=2, max=500), error_messages=REQUIRED)
    systolic = _vital_field("systolic")
    diastolic = _vital_field("diastolic")
    heart_rate = _vital_field("heart_rate")
    temperature = _vital_field("temperature")
    spo2 = _vital_field("spo2")
    respiratory_rate = _vital_field("respiratory_rate")
    height = _vital_field("height")
    weight = _vital_field("weight")
    blood_group = fields.String(load_default=None)
    note = fields.String(load_default=None, validate=validate.Length(max=5000))
    advice = fields.String(load_default=None, validate=validate.Length(max=2000))
    revisit = DayField(load_default=None)
    token = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f\-]{36}$"))

    @validates_schema
    def _pressure(self, data: dict[str, Any], **_: Any) -> None:
        if (data.get("systolic") is None) != (data.get("diastolic") is None):
            raise ValidationError(str(_l("Nhập cả huyết áp tâm thu và tâm trương.")), "diastolic")
        if data.get("systolic") is not None and data.get("diastolic") is not None and data["diastolic"] >= data["systolic"]:
            raise ValidationError(str(_l("Huyết áp tâm trương phải thấp hơn tâm thu.")), "diastolic")
        if data.get("revisit") and data["revisit"] < clock.today():
            raise ValidationError(str(_l("Ngày tái khám phải sau hôm nay.")), "revisit")


def rows(form: Mapping[str, Any], prefix: str, names: tuple[str, ...], limit: int = 20) -> list[dict[str, str]]:
    """The numbered rows `prefix-i-name` the page posted, without the empty ones."""
    out = []
    for i in range(limit):
        row = {n: str(form.get(f"{prefix}-{i}-{n}", "")).strip() for n in names}
        if any(row.values()):
            out.append(row)
    return out
