"""The visit form refuses diagnoses against QĐ 4469's validity rules, each with its message on the
diagnosis row, and pages name diagnoses from the list in the page's language."""

from __future__ import annotations

import re

from clinic_helpers import post_form


def _patient(browser, gender="female", born="01/01/1990"):
    data = {"action": "save", "cccd": "001190012345", "full_name": "Nguyễn Thị Lan", "birth_date": born,
            "gender": gender, "ethnicity": "01", "nationality": "VN", "phone": "0912345678"}
    return post_form(browser, "/clinic/patients/new", data).headers["Location"].split("/")[-1].split("?")[0]


def _visit(browser, pid, **codes):
    path = f"/clinic/patients/{pid}/visits/new"
    token = re.search(r'name="token" value="([^"]+)"', browser.get(path).get_data(as_text=True)).group(1)
    return post_form(browser, path, {"token": token, "reason": "Khám bệnh", **codes})


def test_each_validity_rule_is_refused_with_its_message(signed_in):
    browser = signed_in("doctor")
    man = _patient(browser, gender="male", born="01/01/1980")
    pregnancy = _visit(browser, man, **{"dx-0-code": "O03.9"})
    assert pregnancy.status_code == 422
    assert "Mã này chỉ dùng cho người bệnh nữ (QĐ 4469/QĐ-BYT, Phụ lục A4)." in pregnancy.get_data(as_text=True)
    asterisk = _visit(browser, man, **{"dx-0-code": "J06.9", "dx-1-code": "G01"}).get_data(as_text=True)
    assert "Mã dấu sao (*) phải đi kèm mã dấu găm (†)" in asterisk and "A01.0" in asterisk
    not_main = _visit(browser, man, **{"dx-0-code": "B95.0"}).get_data(as_text=True)
    assert "Mã này không được dùng làm chẩn đoán chính (QĐ 4469/QĐ-BYT, Phụ lục A2)" in not_main
    for invented in ("X99.99", "I10.99"):
        refused = _visit(browser, man, **{"dx-0-code": invented})
        assert refused.status_code == 422 and "Mã ICD-10 không có trong danh mục." in refused.get_data(as_text=True)
    paired = _visit(browser, man, **{"dx-0-code": "A01.0", "dx-1-code": "G01"})
    assert paired.status_code == 302  # typhoid fever† with its meningitis*: accepted


def test_a_too_young_patient(signed_in):
    browser = signed_in("doctor")
    child = _patient(browser, born="01/01/2020")
    page = _visit(browser, child, **{"dx-0-code": "H25.0"})  # senile cataract: over 30 years
    assert page.status_code == 422
    text = page.get_data(as_text=True)
    assert "Mã này không phù hợp với tuổi của người bệnh: chỉ dùng cho người bệnh từ 31 tuổi trở lên" in text
    assert 'value="H25.0"' in text  # the row keeps what was typed
    english = post_form(browser, f"/clinic/patients/{child}/visits/new?lang=en",
                        {"token": re.search(r'name="token" value="([^"]+)"', browser.get(f"/clinic/patients/{child}/visits/new").get_data(as_text=True)).group(1),
                         "reason": "Check-up", "dx-0-code": "H25.0"}, page=f"/clinic/patients/{child}/visits/new").get_data(as_text=True)
    assert "only for patients aged 31 years and over" in english


def test_the_chart_names_the_diagnosis_in_the_pages_language(signed_in, store):
    browser = signed_in("doctor")
    pid = _patient(browser)
    saved = _visit(browser, pid, **{"dx-0-code": "J06.9", "dx-1-code": "I10"})
    assert saved.status_code == 302
    chart = browser.get(f"/clinic/patients/{pid}").get_data(as_text=True)
    assert "Nhiễm trùng đường hô hấp trên cấp, không phân loại" in chart and "Bệnh lý tăng huyết áp" in chart
    english = browser.get(f"/clinic/patients/{pid}?lang=en").get_data(as_text=True)
    assert "Acute upper respiratory infection, unspecified" in english and "Essential (primary) hypertension" in english
    assert "Nhiễm trùng đường hô hấp trên cấp" not in english
    visit = browser.get(saved.headers["Location"] + "?lang=en").get_data(as_text=True)
    assert "Acute upper respiratory infection, unspecified" in visit


def test_the_picker_finds_vietnamese_words_and_names_them_in_the_pages_language(signed_in):
    browser = signed_in("doctor")
    found = browser.get("/clinic/icd10?q=tang+huyet+ap").get_json()
    assert found["version"] == "QĐ 4469/2020"
    first = found["items"][0]
    assert first["code"] == "I10" and first["display"] == first["display_vi"] == "Bệnh lý tăng huyết áp"
    english = browser.get("/clinic/icd10?q=viêm+họng+cấp&lang=en").get_json()["items"]
    assert english[0] == {"code": "J02.9", "display": "Acute pharyngitis, unspecified",
                          "display_vi": "Viêm họng cấp, không đặc hiệu", "display_en": "Acute pharyngitis, unspecified"}
