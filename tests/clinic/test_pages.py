"""The clinic pages through the test client: forms keep what was typed, errors are Vietnamese."""

from __future__ import annotations

import re

from clinic_helpers import post_form
from ehr.fhir import jsonio
from ehr.services import resources
from ehr.services.context import AccessContext

QR = "001190012345|012345678|Nguyễn Thị Lan|01011990|Nữ|Số 5 Lý Thường Kiệt, Hà Nội|15082021"
OPS = AccessContext.operator("test")


def _register(browser, **extra):
    data = {"action": "save", "cccd": "001190012345", "full_name": "Nguyễn Thị Lan", "birth_date": "01/01/1990",
            "gender": "female", "ethnicity": "01", "nationality": "VN", "phone": "0912345678", **extra}
    return post_form(browser, "/clinic/patients/new", data)


def test_pages_need_staff_login(browser):
    assert browser.get("/clinic/").headers["Location"].startswith("/auth/login")


def test_qr_payload_prefills_the_form(signed_in):
    browser = signed_in("receptionist")
    page = post_form(browser, "/clinic/patients/new", {"action": "qr", "qr": QR}).get_data(as_text=True)
    assert 'value="001190012345"' in page and 'value="Nguyễn Thị Lan"' in page and 'value="01/01/1990"' in page


def test_invalid_cccd_is_explained_in_vietnamese_and_the_form_kept(signed_in):
    browser = signed_in("receptionist")
    response = _register(browser, cccd="12345")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Số CCCD phải có đúng 12 chữ số." in page
    assert 'value="Nguyễn Thị Lan"' in page and 'value="0912345678"' in page


def test_missing_fields_and_english(signed_in):
    browser = signed_in("receptionist")
    page = post_form(browser, "/clinic/patients/new?lang=en", {"action": "save", "cccd": "001190012345"}).get_data(as_text=True)
    assert "Required." in page


def test_registering_a_known_cccd_opens_the_existing_record(signed_in, store):
    browser = signed_in("receptionist")
    first = _register(browser)
    assert first.status_code == 302
    again = _register(browser, full_name="Nguyen Thi Lan")
    assert again.status_code == 302 and "existing=1" in again.headers["Location"]
    assert first.headers["Location"].split("?")[0] == again.headers["Location"].split("?")[0]


def test_impossible_vital_signs_are_refused_with_the_values_kept(signed_in):
    browser = signed_in("doctor")
    pid = _register(browser).headers["Location"].split("/")[-1].split("?")[0]
    path = f"/clinic/patients/{pid}/visits/new"
    page = browser.get(path).get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    response = post_form(browser, path, {"token": token, "reason": "Sốt cao", "temperature": "60", "heart_rate": "88"})
    text = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Giá trị phải từ 30 đến 45." in text
    assert 'value="60"' in text and 'value="88"' in text and 'value="Sốt cao"' in text


def test_record_sign_and_the_api_refuses_changes(signed_in, client, store):
    browser = signed_in("doctor")
    pid = _register(browser).headers["Location"].split("/")[-1].split("?")[0]
    path = f"/clinic/patients/{pid}/visits/new"
    token = re.search(r'name="token" value="([^"]+)"', browser.get(path).get_data(as_text=True)).group(1)
    form = {"token": token, "reason": "Sốt, ho", "systolic": "120", "diastolic": "80", "temperature": "38.5", "height": "160",
            "weight": "55", "dx-0-code": "J06.9", "dx-1-code": "E11.9", "rx-0-drug": "Paracetamol 500 mg", "rx-0-dose": "1",
            "rx-0-unit": "viên", "rx-0-route": "26643006", "rx-0-frequency": "3", "rx-0-days": "5", "rx-0-quantity": "15"}
    saved = post_form(browser, path, form)
    assert saved.status_code == 302
    again = post_form(browser, path, form)  # a double submission
    assert again.headers["Location"] == saved.headers["Location"]
    visit_path = saved.headers["Location"]
    encounter_id = visit_path.rsplit("/", 1)[1]
    signed = post_form(browser, visit_path + "/sign", {}, page=visit_path)
    assert signed.status_code == 302
    page = browser.get(visit_path).get_data(as_text=True)
    assert "chữ ký hợp lệ" in page
    chart = browser.get(f"/clinic/patients/{pid}").get_data(as_text=True)
    assert "J06.9" in chart and "Paracetamol 500 mg" in chart
    encounter = jsonio.loads_stored(resources.read(store, OPS, "Encounter", encounter_id).body)
    assert encounter["status"] == "finished" and [d["rank"] for d in encounter["diagnosis"]] == [1, 2]
    put = client.put(f"/fhir/Encounter/{encounter_id}", data=jsonio.canonical(encounter), content_type="application/fhir+json")
    assert put.status_code == 409


def test_a_patient_of_another_facility_needs_break_glass(signed_in, store):
    other = resources.create(store, OPS, {"resourceType": "Patient", "name": [{"text": "Lê Văn Cường"}]}).version.logical_id
    browser = signed_in("doctor")
    closed = browser.get(f"/clinic/patients/{other}")
    assert closed.status_code == 404 and "Truy cập khẩn cấp" in closed.get_data(as_text=True)
    short = post_form(browser, f"/clinic/patients/{other}/break-glass", {"reason": "gấp", "minutes": "30"}, page="/clinic/patients")
    assert short.status_code == 422
    opened = post_form(browser, f"/clinic/patients/{other}/break-glass", {"reason": "Bệnh nhân hôn mê, cần xem tiền sử dị ứng", "minutes": "30"},
                       page="/clinic/patients")
    assert opened.status_code == 302
    chart = browser.get(f"/clinic/patients/{other}")
    assert chart.status_code == 200 and 'id="break-glass-until"' in chart.get_data(as_text=True)


def test_the_desk_finds_by_cccd_in_the_body_and_breaks_glass_from_it(signed_in, store):
    number = "079090000111"
    doc = {"resourceType": "Patient", "name": [{"text": "Lê Văn Cường"}], "identifier": [{"system": store.systems.cccd, "value": number}]}
    other = resources.create(store, OPS, doc).version.logical_id  # registered elsewhere (by an operator)
    browser = signed_in("doctor")
    assert number not in browser.get(f"/clinic/patients?q={number}").get_data(as_text=True)  # a URL query is not a search
    found = post_form(browser, "/clinic/patients", {"q": number}).get_data(as_text=True)
    # Not on the facility's list: the page offers the ways in (a signed paper consent, break-glass).
    assert 'action="/clinic/patients/check-in/consent"' in found and 'action="/clinic/patients/break-glass"' in found
    assert 'method="get"' not in found
    refused = post_form(browser, "/clinic/patients/check-in", {"cccd": number}, page="/clinic/patients")
    unknown = post_form(browser, "/clinic/patients/check-in", {"cccd": "036095000333"}, page="/clinic/patients")
    page = refused.get_data(as_text=True)
    assert refused.status_code == unknown.status_code == 422 and "Không mở được hồ sơ với số CCCD này." in page
    def bare(text: str, typed: str) -> str:
        return re.sub(r'name="csrf_token" value="[^"]*"', "", text).replace(typed, "")
    assert bare(page, number) == bare(unknown.get_data(as_text=True), "036095000333")  # nothing tells them apart
    assert 'action="/clinic/patients/break-glass"' in page
    opened = post_form(browser, "/clinic/patients/break-glass", {"cccd": number, "reason": "Bệnh nhân hôn mê sau tai nạn", "minutes": "30"},
                       page="/clinic/patients")
    assert opened.status_code == 302 and opened.headers["Location"].endswith(f"/clinic/patients/{other}")
    assert browser.get(f"/clinic/patients/{other}").status_code == 200


def test_registering_another_facilitys_patient_opens_nothing(signed_in, store):
    doc = {"resourceType": "Patient", "name": [{"text": "Lê Văn Cường"}], "identifier": [{"system": store.systems.cccd, "value": "001190012345"}]}
    other = resources.create(store, OPS, doc).version.logical_id
    response = _register(signed_in("receptionist"))
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "Số CCCD này đã được đăng ký." in page and other not in page
    assert 'value="Nguyễn Thị Lan"' in page  # the form is kept


def test_history_rows_become_standard_resources(signed_in, store):
    browser = signed_in("doctor")
    pid = _register(browser).headers["Location"].split("/")[-1].split("?")[0]
    path = f"/clinic/patients/{pid}/visits/new"
    token = re.search(r'name="token" value="([^"]+)"', browser.get(path).get_data(as_text=True)).group(1)
    saved = post_form(browser, path, {"token": token, "reason": "Khám định kỳ", "im-0-vaccine": "19", "im-0-lot": "L123",
                                      "im-0-site": "LD", "im-0-date": "01/02/2026", "pr-0-text": "Mổ ruột thừa", "pr-0-date": "05/06/2010",
                                      "fh-0-relationship": "MTH", "fh-0-condition": "Tăng huyết áp"})
    assert saved.status_code == 302
    from ehr.services import search

    def found(rtype):
        page = search.search(store, OPS, rtype, [("patient", pid)])
        return [jsonio.loads_stored(v.body) for v, mode in page.entries if mode == "match"]

    [shot] = found("Immunization")
    assert shot["vaccineCode"]["coding"][0] == {"system": "http://hl7.org/fhir/sid/cvx", "code": "19", "display": "BCG"}
    assert shot["occurrenceDateTime"] == "2026-02-01" and shot["site"]["coding"][0]["code"] == "LD"
    assert found("Procedure")[0]["performedDateTime"] == "2010-06-05"
    assert found("FamilyMemberHistory")[0]["relationship"]["coding"][0]["code"] == "MTH"


def test_the_admin_answers_data_requests(signed_in, store):
    import uuid

    from ehr.services import data_requests, policy

    desk = signed_in("receptionist")
    pid = _register(desk).headers["Location"].split("/")[-1].split("?")[0]
    desk.logout()
    admin = signed_in("admin")
    task = data_requests.submit(store, policy.patient_context(str(uuid.uuid4()), pid), "deletion", "Xin xóa hồ sơ của tôi")
    assert "Xin xóa hồ sơ của tôi" in admin.get("/clinic/requests").get_data(as_text=True)
    refused = post_form(admin, f"/clinic/requests/{task}", {"decision": "accept", "reason": "Đồng ý xóa"}, page="/clinic/requests")
    assert refused.status_code == 409 and "thời hạn luật định" in refused.get_data(as_text=True)
    answered = post_form(admin, f"/clinic/requests/{task}", {"decision": "refuse", "reason": "Hồ sơ phải lưu 10 năm"}, page="/clinic/requests")
    assert answered.status_code == 302
    assert "Không có yêu cầu đang chờ." in admin.get("/clinic/requests").get_data(as_text=True)


def test_the_desk_hands_out_a_health_book_activation_code(signed_in, browser):
    desk = signed_in("receptionist")
    pid = _register(desk).headers["Location"].split("/")[-1].split("?")[0]
    page = post_form(desk, f"/clinic/patients/{pid}/activation", {}, page=f"/clinic/patients/{pid}").get_data(as_text=True)
    code = re.search(r'id="activation-code">([^<]+)<', page).group(1)
    desk.logout()
    activated = browser.submit("/auth/activate", {"login": "001190012345", "code": code, "password": "mật-khẩu-mới-8246",
                                                  "confirm": "mật-khẩu-mới-8246"})
    assert activated.status_code == 302


def test_every_form_explains_its_errors_in_vietnamese_and_keeps_the_input(signed_in, store):
    browser = signed_in("doctor")
    pid = _register(browser).headers["Location"].split("/")[-1].split("?")[0]
    path = f"/clinic/patients/{pid}/visits/new"
    token = re.search(r'name="token" value="([^"]+)"', browser.get(path).get_data(as_text=True)).group(1)
    no_reason = post_form(browser, path, {"token": token, "weight": "61"}).get_data(as_text=True)
    assert "Bắt buộc nhập." in no_reason and 'value="61"' in no_reason
    bad_code = post_form(browser, path, {"token": token, "reason": "Ho", "dx-0-code": "Q99.99.9"}).get_data(as_text=True)
    assert "Mã ICD-10 không có trong danh mục." in bad_code and 'value="Q99.99.9"' in bad_code
    check_in = post_form(browser, "/clinic/patients/check-in", {"cccd": "0123"}, page="/clinic/patients").get_data(as_text=True)
    assert "Số CCCD phải có đúng 12 chữ số." in check_in and 'value="0123"' in check_in
    other = resources.create(store, OPS, {"resourceType": "Patient", "name": [{"text": "Hà Văn Bình"}]}).version.logical_id
    glass = post_form(browser, f"/clinic/patients/{other}/break-glass", {"reason": "gấp quá", "minutes": "30"}, page="/clinic/patients")
    assert glass.status_code == 422 and "ít nhất 10 ký tự" in glass.get_data(as_text=True) and "gấp quá" in glass.get_data(as_text=True)


def test_a_receptionist_sees_the_front_desk_part_of_the_chart(signed_in):
    desk = signed_in("receptionist")
    pid = _register(desk).headers["Location"].split("/")[-1].split("?")[0]
    page = desk.get(f"/clinic/patients/{pid}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Nguyễn Thị Lan" in text and "Danh sách bệnh" not in text and "Khám bệnh</a>" not in text


def test_the_chart_draws_the_vitals_trend(signed_in):
    browser = signed_in("doctor")
    pid = _register(browser).headers["Location"].split("/")[-1].split("?")[0]
    path = f"/clinic/patients/{pid}/visits/new"
    for systolic, temperature in (("150", "38.5"), ("128", "37.0")):
        token = re.search(r'name="token" value="([^"]+)"', browser.get(path).get_data(as_text=True)).group(1)
        form = {"token": token, "reason": "Tái khám", "systolic": systolic, "diastolic": "90", "temperature": temperature,
                "heart_rate": "80", "weight": "55", "height": "160"}
        assert post_form(browser, path, form).status_code == 302
    page = browser.get(f"/clinic/patients/{pid}").get_data(as_text=True)
    figures = dict(re.findall(r'<figure class="trend" data-series="([^"]+)">(.*?)</figure>', page, re.S))
    assert {"bp", "8310-5", "8867-4", "weight", "bmi"} <= set(figures) and "8302-2" not in figures  # height is no trend
    bp_points = re.findall(r'<g class="pt pt-0" tabindex="0" role="img" aria-label="([^"]+)"', figures["bp"])
    assert len(bp_points) == 2 and any("150/90" in p for p in bp_points) and any("128/90" in p for p in bp_points)
    temperatures = re.findall(r'class="pt pt-0" tabindex="0" role="img" aria-label="([^"]+)"', figures["8310-5"])
    assert sorted(t.split(": ")[1] for t in temperatures) == ["37,0 °C", "38,5 °C"]  # Vietnamese decimal comma
    assert "Khoảng bình thường" in figures["bp"] and "Nhiệt độ" in figures["8310-5"]
    english = browser.get(f"/clinic/patients/{pid}?lang=en").get_data(as_text=True)
    assert "Vital signs trend" in english and "Temperature" in english
