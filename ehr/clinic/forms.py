"""The clinic's forms as marshmallow schemas: each error names its field, in the page's language.

A page posts flat HTML fields; `load` returns typed values or {field: [messages]}, and the page is
shown again with everything typed kept. Repeating rows (diagnoses, prescriptions, ...) are numbered
fields (`dx-0-code`, `rx-1-drug`) gathered by `rows`.

Messages: every field carries its label (`metadata["label"]`); a message about the value (a
`Problem`: required, too long, not a number, not a date, not in the list...) is shown after it,
"Ghi chú lâm sàng: Tối đa 5.000 ký tự.". Messages that already name their field ("Số CCCD phải có
đúng 12 chữ số.") are shown as they are. No English text of marshmallow reaches a page: the fields
set every message they can raise, and `_load` maps any library message left to Vietnamese.

Lengths come from the one table of `ehr.fhir.text_limits`, by the FHIR element the field is written
to, so a form refuses exactly what the FHIR API would refuse. For the per-row fields a page checks
itself: `too_long`, `check_text`, `check_day` and `check_rows` (all row text fields at once).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Callable, Iterable, Mapping

from flask_babel import format_number
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates, validates_schema

from ehr.auth import clock
from ehr.fhir import text_limits
from ehr.fhir.terminology import VITAL_SIGNS
from ehr.identity import clinical_codes, codetables, rules


class Problem:
    """A message about a field's value, shown after the field's label; evaluated (translated) late."""

    __slots__ = ("_text",)

    def __init__(self, text: Any) -> None:
        self._text = text  # a lazy string, or a function returning the message

    def __str__(self) -> str:
        return str(self._text() if callable(self._text) else self._text)

    def __repr__(self) -> str:
        return f"Problem({self._text!r})"


REQUIRED_TEXT = _l("Bắt buộc nhập.")
INVALID_TEXT = _l("Giá trị không hợp lệ.")
NUMBER_TEXT = _l("Nhập một số.")
DAY_FORMAT_TEXT = _l("Nhập ngày theo dạng dd/mm/yyyy.")
CHOICE_TEXT = _l("Chọn một giá trị trong danh sách.")
EMAIL_TEXT = _l("Địa chỉ email không hợp lệ.")

REQUIRED = {"required": Problem(REQUIRED_TEXT), "null": Problem(REQUIRED_TEXT), "invalid": Problem(INVALID_TEXT),
            "invalid_utf8": Problem(INVALID_TEXT), "validator_failed": Problem(INVALID_TEXT)}
NUMBER = {**REQUIRED, "invalid": Problem(NUMBER_TEXT), "special": Problem(NUMBER_TEXT), "too_large": Problem(_l("Số quá lớn."))}
DAY = {**REQUIRED, "invalid": Problem(DAY_FORMAT_TEXT)}


def _max_text(limit: int) -> str:
    return _("Tối đa %(max)s ký tự.", max=format_number(limit))


def _between_text(low: int, high: int) -> str:
    return _("Từ %(min)s đến %(max)s ký tự.", min=format_number(low), max=format_number(high))


def limit_of(path: str) -> int:
    """The length limit of a FHIR element path ("MedicationRequest.medicationCodeableConcept.text")."""
    resource_type, element = path.split(".", 1)
    return text_limits.limit_for(resource_type, element)


class TextLength(validate.Validator):
    """At most `limit` characters (and at least `minimum`), the message in the page's language."""

    def __init__(self, limit: int, minimum: int | None = None) -> None:
        self.limit, self.minimum = limit, minimum

    def __call__(self, value: str) -> str:
        if len(value) > self.limit:
            limit = self.limit
            raise ValidationError([Problem(lambda: _max_text(limit))])
        if self.minimum is not None and len(value) < self.minimum:
            minimum = self.minimum
            raise ValidationError([Problem(lambda: _("Ít nhất %(min)s ký tự.", min=format_number(minimum)))])
        return value


class Choice(validate.Validator):
    """One of the values the form offers."""

    def __init__(self, choices: Iterable[str] | Callable[[], Iterable[str]], message: Any = CHOICE_TEXT) -> None:
        self.choices, self.message = choices, message

    def __call__(self, value: str) -> str:
        allowed = self.choices() if callable(self.choices) else self.choices
        if value not in allowed:
            raise ValidationError([Problem(self.message)])
        return value


class Between(validate.Validator):
    """A number from `low` to `high`."""

    def __init__(self, low: Any, high: Any, message: Any) -> None:
        self.low, self.high, self.message = low, high, message

    def __call__(self, value: Any) -> Any:
        if not self.low <= value <= self.high:
            raise ValidationError([Problem(self.message)])
        return value


class Pattern(validate.Validator):
    def __init__(self, regex: str, message: Any = INVALID_TEXT) -> None:
        self.regex, self.message = re.compile(regex), message

    def __call__(self, value: str) -> str:
        if not self.regex.match(value):
            raise ValidationError([Problem(self.message)])
        return value


def text(label: Any, path: str, *, required: bool = False, minimum: int | None = None, extra: Iterable[Any] = ()) -> fields.String:
    """A free-text field whose length limit is that of the FHIR element `path` it is written to."""
    limit = limit_of(path)
    kwargs: dict[str, Any] = {"required": True} if required else {"load_default": None}
    return fields.String(validate=[TextLength(limit, minimum), *extra], error_messages=REQUIRED,
                         metadata={"label": label, "limit": limit, "path": path}, **kwargs)


def choice(label: Any, choices: Iterable[str] | Callable[[], Iterable[str]], *, required: bool = False, default: Any = None,
           message: Any = CHOICE_TEXT) -> fields.String:
    kwargs: dict[str, Any] = {"required": True} if required else {"load_default": default}
    return fields.String(validate=Choice(choices, message), error_messages=REQUIRED, metadata={"label": label}, **kwargs)


# --- dates ---------------------------------------------------------------------------------------

# The shapes of a date (day 1-31, month 1-12); whether that day exists is `date`'s to say.
_DMY = re.compile(r"(0?[1-9]|[12][0-9]|3[01])/(0?[1-9]|1[0-2])/([0-9]{4})")
_ISO = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])")


class DayField(fields.Field):
    """A date typed dd/mm/yyyy (Vietnamese) or yyyy-mm-dd (a browser's date input).

    "2024-13-99" or "abc" are not written as dates ("Nhập ngày theo dạng dd/mm/yyyy."); "31/02/2024"
    is, but that day does not exist ("31/02/2024 không phải là ngày có thật.")."""

    default_error_messages = DAY

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> date:
        typed = str(value).strip()
        if (found := _DMY.fullmatch(typed)) is not None:
            d, m, y = (int(p) for p in found.groups())
        elif (found := _ISO.fullmatch(typed)) is not None:
            y, m, d = (int(p) for p in found.groups())
        else:
            raise self.make_error("invalid")
        try:
            return date(y, m, d)
        except ValueError:
            raise ValidationError([Problem(_l("%(value)s không phải là ngày có thật.", value=typed))]) from None


def parse_day(text: str) -> date | None:
    """dd/mm/yyyy or yyyy-mm-dd, None when it is not a real date."""
    try:
        return DayField().deserialize(text)
    except ValidationError:
        return None


def _blank_to_none(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.strip() if isinstance(v, str) else v) for k, v in data.items() if not (isinstance(v, str) and not v.strip())}


# --- helpers for the fields a page checks itself (numbered rows) ----------------------------------


def too_long(label: Any, value: str | None, limit: int) -> str | None:
    """"Thuốc: Tối đa 200 ký tự." when `value` is longer than `limit`, else None."""
    if value is not None and len(value) > limit:
        return f"{label}: {_max_text(limit)}"
    return None


def check_text(errors: dict[str, list[str]], key: str, label: Any, value: str | None, path: str) -> bool:
    """Add the message of a too-long `value` to errors[key] (limit of the FHIR element `path`, e.g.
    "MedicationRequest.medicationCodeableConcept.text"); True when it fits."""
    message = too_long(label, value, limit_of(path))
    if message is None:
        return True
    errors.setdefault(key, []).append(message)
    return False


def check_day(errors: dict[str, list[str]], key: str, label: Any, value: str | None) -> date | None:
    """The date typed in a row field, or None with the message ("Ngày tiêm: 31/02/2024 không phải là
    ngày có thật.", "... Nhập ngày theo dạng dd/mm/yyyy.") added to errors[key]. Blank: None, no message."""
    if not value or not value.strip():
        return None
    try:
        return DayField().deserialize(value)
    except ValidationError as exc:
        errors.setdefault(key, []).extend(f"{label}: {m}" for m in _messages(exc.messages))
        return None


# (prefix, name) of a row field -> (label, the FHIR element it is written to). The labels are those of
# templates/clinic/visit_form.html.
ROW_TEXTS: dict[tuple[str, str], tuple[Any, str]] = {
    ("rx", "drug"): (_l("Thuốc"), "MedicationRequest.medicationCodeableConcept.text"),
    ("rx", "unit"): (_l("Đơn vị"), "MedicationRequest.dosageInstruction.doseAndRate.doseQuantity.unit"),
    ("rx", "instructions"): (_l("Cách dùng"), "MedicationRequest.dosageInstruction.text"),
    ("al", "substance"): (_l("Chất gây dị ứng"), "AllergyIntolerance.code.text"),
    ("al", "reaction"): (_l("Biểu hiện"), "AllergyIntolerance.reaction.manifestation.text"),
    ("im", "lot"): (_l("Số lô"), "Immunization.lotNumber"),
    ("pr", "text"): (_l("Phẫu thuật, thủ thuật"), "Procedure.code.text"),
    ("fh", "condition"): (_l("Bệnh của người thân"), "FamilyMemberHistory.condition.code.text"),
}


def check_rows(form: Mapping[str, Any], errors: dict[str, list[str]], limit: int = 20) -> bool:
    """Check the length of every row text field posted (`rx-0-drug`, ...) against ROW_TEXTS; the
    messages go to errors under the field's own name. True when everything fits."""
    fine = True
    for (prefix, name), (label, path) in ROW_TEXTS.items():
        for i in range(limit):
            key = f"{prefix}-{i}-{name}"
            value = str(form.get(key, "")).strip()
            if value:
                fine = check_text(errors, key, label, value, path) and fine
    return fine


# --- loading ---------------------------------------------------------------------------------------

# What marshmallow says in English, should a message of the library still come through.
_LIBRARY: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"Missing data for required field\.|Field may not be null\."), lambda m: str(REQUIRED_TEXT)),
    (re.compile(r"Not a valid (number|integer|decimal)\.|Special numeric values.*|Number too large\."), lambda m: str(NUMBER_TEXT)),
    (re.compile(r"Not a valid (date|datetime|time)\."), lambda m: str(DAY_FORMAT_TEXT)),
    (re.compile(r"Not a valid email address\."), lambda m: str(EMAIL_TEXT)),
    (re.compile(r"Longer than maximum length (\d+)\."), lambda m: _max_text(int(m.group(1)))),
    (re.compile(r"Length must be between (\d+) and (\d+)\."), lambda m: _between_text(int(m.group(1)), int(m.group(2)))),
    (re.compile(r"Must be one of: .*"), lambda m: str(CHOICE_TEXT)),
)


def _messages(raw: Any) -> list[Any]:
    if isinstance(raw, dict):
        return [m for v in raw.values() for m in _messages(v)]
    return list(raw) if isinstance(raw, (list, tuple)) else [raw]


def _message(label: Any, message: Any) -> str:
    if isinstance(message, Problem):
        return f"{label}: {message}" if label else str(message)
    if isinstance(message, str):  # a plain string: the library's own text
        for pattern, vietnamese in _LIBRARY:
            found = pattern.fullmatch(message)
            if found:
                text_ = vietnamese(found)
                break
        else:
            text_ = str(INVALID_TEXT)
        return f"{label}: {text_}" if label else text_
    return str(message)  # a lazy string that names its field


def _load(schema: Schema, data: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, list[str]]]:
    try:
        return schema.load(data), {}
    except ValidationError as exc:
        errors = exc.normalized_messages()
        out: dict[str, list[str]] = {}
        for key, raw in errors.items():  # type: ignore[union-attr]
            field = schema.fields.get(key)
            label = field.metadata.get("label") if field is not None else None
            out["form" if key == "_schema" else key] = [_message(label, m) for m in _messages(raw)]
        return None, out


def labels(schema: Schema) -> dict[str, str]:
    """Field name -> label, for a page's list of the fields to correct."""
    return {name: str(f.metadata["label"]) for name, f in schema.fields.items() if f.metadata.get("label")}


# --- the forms -------------------------------------------------------------------------------------


class RegisterSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    cccd = fields.String(required=True, error_messages=REQUIRED, metadata={"label": _l("Số CCCD")})
    full_name = text(_l("Họ và tên"), "Patient.name.text", required=True, minimum=2)
    birth_date = DayField(required=True, error_messages=DAY, metadata={"label": _l("Ngày sinh")})
    gender = choice(_l("Giới tính"), ("male", "female", "unknown"), required=True)
    ethnicity = fields.String(load_default=None, error_messages=REQUIRED, metadata={"label": _l("Dân tộc")})
    nationality = choice(_l("Quốc tịch"), ("VN", "OTHER"), default="VN")
    occupation = choice(_l("Nghề nghiệp"), lambda: codetables.occupations(), message=_l("Chọn trong danh mục."))
    phone = text(_l("Số điện thoại"), "Patient.telecom.value", extra=[Pattern(r"^\+?[0-9 .]{8,15}$", _l("Nhập từ 8 đến 15 chữ số."))])
    address_line = text(_l("Số nhà, đường, thôn/ấp/tổ dân phố"), "Patient.address.line")
    province = fields.String(load_default=None, error_messages=REQUIRED, metadata={"label": _l("Tỉnh/Thành phố")})
    commune = fields.String(load_default=None, error_messages=REQUIRED, metadata={"label": _l("Mã xã/phường (5 chữ số)")})
    bhyt = fields.String(load_default=None, error_messages=REQUIRED, metadata={"label": _l("Mã thẻ BHYT")})
    rep_name = text(_l("Họ và tên người đại diện"), "RelatedPerson.name.text")
    rep_relationship = choice(_l("Quan hệ"), ("MTH", "FTH", "GUARD"))
    rep_phone = text(_l("Số điện thoại người đại diện"), "RelatedPerson.telecom.value",
                     extra=[Pattern(r"^\+?[0-9 .]{8,15}$", _l("Nhập từ 8 đến 15 chữ số."))])

    @validates("cccd")
    def _cccd(self, value: str, **_: Any) -> None:
        try:
            rules.check_cccd(value)
        except rules.IdentifierError:
            raise ValidationError([_l("Số CCCD phải có đúng 12 chữ số.")]) from None

    @validates("full_name")
    def _name_words(self, value: str, **kwargs: Any) -> None:
        # family is the first word(s), given names the others (rules.split_name): each has its own limit
        longest = min(text_limits.limit_for("Patient", "name.family"), text_limits.limit_for("Patient", "name.given"))
        if any(len(word) > longest for word in value.split()):
            raise ValidationError([Problem(lambda: _("Mỗi từ tối đa %(max)s ký tự.", max=format_number(longest)))])

    @validates("birth_date")
    def _born(self, value: date, **_: Any) -> None:
        if value > clock.today():
            raise ValidationError([Problem(_l("Không được sau hôm nay."))])
        if value.year < 1890:
            raise ValidationError([Problem(_l("Năm sinh phải từ 1890."))])

    @validates("ethnicity")
    def _ethnicity(self, value: str | None, **_: Any) -> None:
        if value and value not in codetables.ethnic_groups():
            raise ValidationError([_l("Chọn dân tộc trong danh mục.")])

    @validates("bhyt")
    def _bhyt(self, value: str | None, **_: Any) -> None:
        if value:
            try:
                rules.parse_bhyt(value)
            except rules.IdentifierError:
                raise ValidationError([_l("Mã thẻ BHYT không hợp lệ (15 ký tự, 10 chữ số mã BHXH hoặc số CCCD).")]) from None

    @validates_schema
    def _address(self, data: dict[str, Any], **_: Any) -> None:
        commune = data.get("commune")
        if commune:
            known = codetables.communes().get(commune)
            if known is None or (data.get("province") and known.province_code != data["province"]):
                raise ValidationError([_l("Xã/phường không thuộc tỉnh/thành phố đã chọn.")], "commune")
        if data.get("province") and data["province"] not in codetables.provinces():
            raise ValidationError([_l("Chọn tỉnh/thành phố trong danh mục.")], "province")

    def load_form(self, form: Mapping[str, Any]) -> tuple[dict[str, Any] | None, dict[str, list[str]]]:
        return _load(self, _blank_to_none(form))


def rows(form: Mapping[str, Any], prefix: str, names: tuple[str, ...], limit: int = 20) -> list[tuple[int, dict[str, str]]]:
    """The numbered rows `prefix-i-name` the page posted, without the empty ones, each with its
    number i (so a message goes to the row's own fields even when a row above it is empty)."""
    out = []
    for i in range(limit):
        row = {n: str(form.get(f"{prefix}-{i}-{n}", "")).strip() for n in names}
        if any(row.values()):
            out.append((i, row))
    return out


_VITAL_LABELS = {
    "systolic": _l("Huyết áp tâm thu (mmHg)"), "diastolic": _l("Huyết áp tâm trương (mmHg)"), "heart_rate": _l("Mạch (lần/phút)"),
    "temperature": _l("Nhiệt độ (°C)"), "spo2": _l("SpO2 (%)"), "respiratory_rate": _l("Nhịp thở (lần/phút)"),
    "height": _l("Chiều cao (cm)"), "weight": _l("Cân nặng (kg)"),
}


class DecimalComma(fields.Decimal):
    """A number typed with a decimal comma ("36,8", the Vietnamese way) or a point ("36.8")."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().replace(",", ".")
        return super()._deserialize(value, attr, data, **kwargs)


def _vital_field(key: str) -> fields.Decimal:
    sign = VITAL_SIGNS[key]
    message = _l("Giá trị phải từ %(low)s đến %(high)s.", low=f"{sign.low:g}", high=f"{sign.high:g}")
    return DecimalComma(load_default=None, places=None, validate=Between(sign.low, sign.high, message), error_messages=NUMBER,
                          metadata={"label": _VITAL_LABELS[key]})


class VisitSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    class_code = choice(_l("Hình thức khám chữa bệnh"), ("AMB", "IMP", "EMER", "VR", "HH"), default="AMB")
    reason = text(_l("Lý do đến khám"), "Encounter.reasonCode.text", required=True, minimum=2)
    systolic = _vital_field("systolic")
    diastolic = _vital_field("diastolic")
    heart_rate = _vital_field("heart_rate")
    temperature = _vital_field("temperature")
    spo2 = _vital_field("spo2")
    respiratory_rate = _vital_field("respiratory_rate")
    height = _vital_field("height")
    weight = _vital_field("weight")
    blood_group = choice(_l("Nhóm máu"), lambda: [g.code for g in clinical_codes.blood_groups()])
    note = text(_l("Ghi chú lâm sàng"), "Annotation.text")  # typed as a note; stored in the Composition's section
    advice = text(_l("Lời dặn của bác sĩ"), "Annotation.text")
    revisit = DayField(load_default=None, error_messages=DAY, metadata={"label": _l("Ngày tái khám")})
    token = fields.String(required=True, validate=Pattern(r"^[0-9a-f\-]{36}$", _l("Không hợp lệ: mở lại trang.")),
                          error_messages=REQUIRED, metadata={"label": _l("Biểu mẫu")})

    @validates_schema
    def _pressure(self, data: dict[str, Any], **_: Any) -> None:
        if (data.get("systolic") is None) != (data.get("diastolic") is None):
            raise ValidationError([_l("Nhập cả huyết áp tâm thu và tâm trương.")], "diastolic")
        if data.get("systolic") is not None and data.get("diastolic") is not None and data["diastolic"] >= data["systolic"]:
            raise ValidationError([_l("Huyết áp tâm trương phải thấp hơn tâm thu.")], "diastolic")
        if data.get("revisit") and data["revisit"] < clock.today():
            raise ValidationError([_l("Ngày tái khám phải sau hôm nay.")], "revisit")
