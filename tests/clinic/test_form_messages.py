"""Form messages in the page's language, each naming its field; length limits from the FHIR table;
real dates checked as dates (issue 14)."""

from __future__ import annotations

import html
import re

import pytest
from flask import render_template_string

from clinic_helpers import post_form
from ehr.clinic import forms
from ehr.fhir import text_limits

# Marshmallow's own English texts: none may reach a page.
LIBRARY_ENGLISH = ("Length must be", "Not a valid", "Missing data for required field", "Field may not be null", "Must be one of",
                   "Longer than maximum", "Shorter than minimum", "Invalid value", "String does not match", "Must be greater")


def _register(browser, lang="vi", **extra):
    data = {"action": "save", "cccd": "001190012345", "full_name": "Nguyễn Thị Lan", "birth_date": "01/01/1990",
            "gender": "female", "ethnicity": "01", "nationality": "VN", "phone": "0912345678", **extra}
    return post_form(browser, f"/clinic/patients/new?lang={lang}", data)


def _page(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _no_library_english(page: str) -> None:
    assert not [text for text in LIBRARY_ENGLISH if text in page]


def _described(page: str, name: str) -> bool:
    """The field `name` is marked invalid and points at its message."""
    tag = re.search(rf'<(?:input|textarea|select)[^>]*name="{re.escape(name)}"[^>]*>', page)
    return bool(tag) and f'aria-describedby="err-{name}"' in tag.group(0) and 'aria-invalid="true"' in tag.group(0) \
        and f'id="err-{name}"' in page


def test_31_february_is_not_a_real_date_the_field_is_named_and_the_form_kept(signed_in):
    browser = signed_in("receptionist")
    response = _register(browser, birth_date="31/02/2024")
    page = _page(response)
    assert response.status_code == 422
    assert "Ngày sinh: 31/02/2024 không phải là ngày có thật." in page
    assert "theo dạng dd/mm/yyyy" not in page.split("Ngày sinh:", 1)[1].split("<", 1)[0]  # not a format error
    assert _described(page, "birth_date")
    assert 'value="31/02/2024"' in page and 'value="Nguyễn Thị Lan"' in page and 'value="0912345678"' in page
    _no_library_english(page)


@pytest.mark.parametrize("typed", ["2024-13-99", "abc", "32/01/2024", "1990"])
def test_a_date_not_written_as_a_date_is_a_format_error(signed_in, typed):
    browser = signed_in("receptionist")
    response = _register(browser, birth_date=typed)
    page = _page(response)
    assert response.status_code == 422
    assert "Ngày sinh: Nhập ngày theo dạng dd/mm/yyyy." in page
    assert "không phải là ngày có thật" not in page
    assert f'value="{typed}"' in page


def test_real_dates_in_both_shapes():
    assert forms.parse_day("29/02/2024") == forms.parse_day("2024-02-29") is not None
    assert forms.parse_day("1/2/2024") is not None
    assert forms.parse_day("29/02/2023") is None and forms.parse_day("2024-02-30") is None and forms.parse_day("2024-13-99") is None


def test_too_long_free_text_names_its_field_with_the_limit_of_the_fhir_table(signed_in):
    browser = signed_in("receptionist")
    response = _register(browser, full_name="Nguyễn " + "a" * 4994, address_line="Số 5 " + "x" * 300, rep_name="Trần " + "b" * 300,
                         rep_relationship="MTH")
    page = _page(response)
    assert response.status_code == 422
    assert text_limits.limit_for("Patient", "name.text") == 200 and text_limits.limit_for("Patient", "address.line") == 200
    assert "Họ và tên: Tối đa 200 ký tự." in page
    assert "Số nhà, đường, thôn/ấp/tổ dân phố: Tối đa 200 ký tự." in page
    assert "Họ và tên người đại diện: Tối đa 200 ký tự." in page
    assert _described(page, "full_name") and _described(page, "address_line") and _described(page, "rep_name")
    _no_library_english(page)


def test_required_and_choice_messages_name_the_field(signed_in):
    browser = signed_in("receptionist")
    response = post_form(browser, "/clinic/patients/new", {"action": "save", "gender": "other", "nationality": "??",
                                                           "rep_relationship": "BOSS", "phone": "call me"})
    page = _page(response)
    assert response.status_code == 422
    for message in ("Số CCCD: Bắt buộc nhập.", "Họ và tên: Bắt buộc nhập.", "Ngày sinh: Bắt buộc nhập.",
                    "Giới tính: Chọn một giá trị trong danh sách.", "Quốc tịch: Chọn một giá trị trong danh sách.",
                    "Quan hệ: Chọn một giá trị trong danh sách.", "Số điện thoại: Nhập từ 8 đến 15 chữ số."):
        assert message in page
    _no_library_english(page)


def test_the_english_page_shows_english_messages(signed_in):
    browser = signed_in("receptionist")
    page = _page(_register(browser, lang="en", birth_date="31/02/2024", address_line="x" * 201))
    assert "Date of birth: 31/02/2024 is not a real date." in page
    assert "House number, street, hamlet or residential group: At most 200 characters." in page
    assert "không phải là ngày có thật" not in page and "Tối đa" not in page
    missing = _page(post_form(browser, "/clinic/patients/new?lang=en", {"action": "save"}))
    assert "Full name: Required." in missing


def _visit_path(browser) -> tuple[str, str]:
    pid = _register(browser).headers["Location"].split("/")[-1].split("?")[0]
    path = f"/clinic/patients/{pid}/visits/new"
    token = re.search(r'name="token" value="([^"]+)"', browser.get(path).get_data(as_text=True)).group(1)
    return path, token


def test_visit_form_messages_are_vietnamese_and_name_their_field(signed_in):
    browser = signed_in("doctor")
    path, token = _visit_path(browser)
    response = post_form(browser, path, {"token": token, "reason": "x" * 501, "temperature": "sốt", "heart_rate": "300",
                                         "class_code": "XYZ", "revisit": "31/04/2030"})
    page = _page(response)
    assert response.status_code == 422
    assert "Lý do đến khám: Tối đa 500 ký tự." in page and _described(page, "reason")
    assert "Nhiệt độ (°C): Nhập một số." in page and _described(page, "temperature")
    assert "Mạch (lần/phút): Giá trị phải từ" in page
    assert "Hình thức khám chữa bệnh: Chọn một giá trị trong danh sách." in page
    assert "Ngày tái khám: 31/04/2030 không phải là ngày có thật." in page
    _no_library_english(page)


def test_a_too_long_note_is_refused_and_kept(signed_in):
    browser = signed_in("doctor")
    path, token = _visit_path(browser)
    note = "Bệnh nhân ho nhiều về đêm. " * 200  # 5,400 characters
    response = post_form(browser, path, {"token": token, "reason": "Ho kéo dài", "note": note})
    page = _page(response)
    assert response.status_code == 422
    assert note.strip() in page  # everything typed is kept
    _no_library_english(page)


def test_a_too_long_note_marks_the_note_field(signed_in):
    browser = signed_in("doctor")
    path, token = _visit_path(browser)
    page = _page(post_form(browser, path, {"token": token, "reason": "Ho kéo dài", "note": "x" * 5001}))
    assert "Ghi chú lâm sàng: Tối đa 5.000 ký tự." in page and _described(page, "note")


def test_a_long_note_within_the_limit_is_saved(signed_in):
    browser = signed_in("doctor")
    path, token = _visit_path(browser)
    note = "Khám: tỉnh, tiếp xúc tốt; họng đỏ, phổi không ran. " * 95
    assert 4000 < len(note.strip()) <= text_limits.limit_for("Annotation", "text") == 5000
    response = post_form(browser, path, {"token": token, "reason": "Ho kéo dài", "note": note})
    assert response.status_code == 302


def test_the_note_messages_through_the_schema(app):
    with app.test_request_context("/?lang=vi"):
        data, errors = forms._load(forms.VisitSchema(), {"token": "0" * 36, "reason": "Ho", "note": "x" * 5001, "advice": "y" * 5001})
        assert data is None
        assert errors == {"note": ["Ghi chú lâm sàng: Tối đa 5.000 ký tự."], "advice": ["Lời dặn của bác sĩ: Tối đa 5.000 ký tự."]}
    with app.test_request_context("/?lang=en"):
        _, errors = forms._load(forms.VisitSchema(), {"token": "0" * 36, "reason": "Ho", "note": "x" * 5001})
        assert errors == {"note": ["Clinical note: At most 5,000 characters."]}


def test_row_helpers_for_the_pages(app):
    with app.test_request_context("/?lang=vi"):
        errors: dict[str, list[str]] = {}
        form = {"rx-0-drug": "Paracetamol " + "5" * 4988, "rx-1-drug": "Amoxicillin 500 mg", "rx-1-instructions": "i" * 501,
                "al-0-substance": "s" * 201, "im-0-lot": "l" * 101, "pr-1-text": "p" * 501, "fh-0-condition": "c" * 501}
        assert forms.check_rows(form, errors) is False
        assert errors == {
            "rx-0-drug": ["Thuốc: Tối đa 200 ký tự."], "rx-1-instructions": ["Cách dùng: Tối đa 500 ký tự."],
            "al-0-substance": ["Chất gây dị ứng: Tối đa 200 ký tự."], "im-0-lot": ["Số lô: Tối đa 100 ký tự."],
            "pr-1-text": ["Phẫu thuật, thủ thuật: Tối đa 500 ký tự."], "fh-0-condition": ["Bệnh của người thân: Tối đa 500 ký tự."],
        }
        assert forms.check_rows({"rx-0-drug": "Paracetamol 500 mg"}, {}) is True
        assert forms.too_long("Thuốc", "x" * 200, 200) is None and forms.too_long("Thuốc", "x" * 201, 200) == "Thuốc: Tối đa 200 ký tự."
        assert forms.check_text(errors, "rx-2-drug", "Thuốc", "x" * 201, "MedicationRequest.medicationCodeableConcept.text") is False
        assert errors["rx-2-drug"] == ["Thuốc: Tối đa 200 ký tự."]
        days: dict[str, list[str]] = {}
        assert forms.check_day(days, "im-0-date", "Ngày tiêm", "31/02/2024") is None
        assert forms.check_day(days, "pr-0-date", "Ngày", "2024-13-99") is None
        assert forms.check_day(days, "im-1-date", "Ngày tiêm", "") is None
        assert days == {"im-0-date": ["Ngày tiêm: 31/02/2024 không phải là ngày có thật."],
                        "pr-0-date": ["Ngày: Nhập ngày theo dạng dd/mm/yyyy."]}
        assert str(forms.check_day({}, "k", "Ngày", "29/02/2024")) == "2024-02-29"
    with app.test_request_context("/?lang=en"):
        errors = {}
        forms.check_rows({"rx-0-drug": "d" * 201}, errors)
        assert errors == {"rx-0-drug": ["Drug: At most 200 characters."]}


def test_library_messages_never_come_through_in_english(app):
    with app.test_request_context("/?lang=vi"):
        for english, vietnamese in (("Length must be between 2 and 500.", "Từ 2 đến 500 ký tự."), ("Not a valid integer.", "Nhập một số."),
                                    ("Missing data for required field.", "Bắt buộc nhập."), ("Must be one of: a, b.", "Chọn một giá trị trong danh sách."),
                                    ("Not a valid email address.", "Địa chỉ email không hợp lệ."), ("Something else.", "Giá trị không hợp lệ.")):
            assert forms._message("Ô", english) == f"Ô: {vietnamese}"


def test_field_macros_point_each_field_at_its_message_and_the_summary_lists_them(app):
    template = ('{% from "clinic/_fields.html" import field, textarea, select, error_summary %}'
                '{{ error_summary(errors) }}{{ textarea("note", "Ghi chú lâm sàng", values, errors) }}'
                '{{ field("reason", "Lý do đến khám", values, errors) }}{{ select("gender", "Giới tính", [("male", "Nam")], values, errors) }}')
    errors = {"note": ["Ghi chú lâm sàng: Tối đa 5.000 ký tự."], "gender": ["Giới tính: Bắt buộc nhập."], "form": ["Không lưu được."]}
    with app.test_request_context("/?lang=vi"):
        page = html.unescape(render_template_string(template, errors=errors, values={"note": "x" * 5001, "reason": "Ho"}))
    assert _described(page, "note") and _described(page, "gender") and not _described(page, "reason")
    assert "x" * 5001 in page
    summary = page.split('id="error-summary"', 1)[1].split("</div>", 1)[0]
    assert "Không lưu được." in summary and "Vui lòng sửa các ô được đánh dấu." in summary
    assert '<a href="#f-note">Ghi chú lâm sàng: Tối đa 5.000 ký tự.' in summary and '<a href="#f-gender">Giới tính: Bắt buộc nhập.' in summary
    with app.test_request_context("/?lang=vi"):
        assert render_template_string('{% from "clinic/_fields.html" import error_summary %}{{ error_summary({}) }}').strip() == ""


def test_a_row_date_that_does_not_exist_is_named_on_its_field(signed_in):
    browser = signed_in("doctor")
    path, token = _visit_path(browser)
    page = _page(post_form(browser, path, {"token": token, "reason": "Tiêm chủng", "im-1-vaccine": "08", "im-1-date": "31/02/2026",
                                           "rx-1-drug": "x" * 201, "rx-1-frequency": "2"}))
    assert "Ngày tiêm: 31/02/2026 không phải là ngày có thật." in page and _described(page, "im-1-date")
    assert "Thuốc: Tối đa 200 ký tự." in page and _described(page, "rx-1-drug")  # row 1's own field, row 0 empty
