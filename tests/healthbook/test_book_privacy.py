"""Sharing with a hospital (a Consent with its proof; the hospital's API access follows), who
opened my record (names, organizations, break-glass reasons), and data requests."""

from __future__ import annotations

import json
from datetime import date

import pytest

from access_helpers import bearer, register, token
from ehr.fhir.outcomes import FhirError
from ehr.fhir import healthbook as hb
from ehr.services import care, data_requests, healthbook_privacy, policy, resources
from book_seed import OPS, context_of, csrf_token


def test_grant_and_revoke_a_hospital_and_its_api_access_follows(secured, store, world, signed_in):
    a, hospital_org = world.a, world.orgs[1]
    hospital = register(store, "benh-vien-hoa-hao", hospital_org, ["system/*.rs"])
    api = secured.test_client()
    read = lambda: api.get(f"/fhir/Patient/{a.patient_id}", headers=bearer(token(api, hospital))).status_code  # noqa: E731
    assert read() == 404

    browser = signed_in(a)
    sharing = f"/healthbook/{a.patient_id}/sharing"
    code = resources.read(store, OPS, "Organization", hospital_org).body
    facility_code = json.loads(code)["identifier"][0]["value"]
    found = browser.get(f"{sharing}?q={facility_code}").get_data(as_text=True)
    assert f'value="{hospital_org}"' in found and "checked" in found
    form = {"q": facility_code, "organization": hospital_org, "purpose": "TREAT", "days": "90", "csrf_token": csrf_token(browser, sharing)}
    refused = browser.post(sharing, form)  # the box is not ticked: no consent by default
    assert refused.status_code == 422 and "Đánh dấu ô xác nhận" in refused.get_data(as_text=True)
    assert read() == 404
    granted = browser.post(sharing, {**form, "agree": "yes"})
    assert granted.status_code == 302 and granted.headers["Location"].endswith("?m=granted")
    assert read() == 200

    [shared] = healthbook_privacy.grants(store, context_of(store, a.patient_id), a.patient_id)
    consent = json.loads(resources.read(store, OPS, "Consent", shared.grant.id).body)
    assert consent["performer"] == [{"reference": f"Patient/{a.patient_id}"}] and consent["dateTime"]
    assert consent["policy"][0]["uri"].endswith("/share-records/v1") and consent["provision"]["type"] == "permit"
    provision = consent["provision"]
    assert provision["purpose"][0]["code"] == "TREAT" and provision["actor"][0]["reference"]["reference"] == f"Organization/{hospital_org}"
    page = browser.get(sharing).get_data(as_text=True)
    assert "Đang được xem hồ sơ" in page and shared.organizations[0] in page

    revoked = browser.post(f"{sharing}/{shared.grant.id}/revoke", {"csrf_token": csrf_token(browser, sharing)})
    assert revoked.status_code == 302 and read() == 404
    assert json.loads(resources.read(store, OPS, "Consent", shared.grant.id).body)["status"] == "inactive"


def test_who_opened_my_record(store, world, signed_in):
    a = world.a
    doctor = policy.staff_context("acct-bs-lan", world.orgs[2], "doctor")
    care.break_glass(store, doctor, a.patient_id, "Bệnh nhân bất tỉnh, cần xem tiền sử dị ứng")
    resources.read(store, doctor, "Patient", a.patient_id)
    browser = signed_in(a)
    browser.get(f"/healthbook/{a.patient_id}/")  # my own reading: left out unless asked for
    html = browser.get(f"/healthbook/{a.patient_id}/access-log").get_data(as_text=True)
    assert html.count("Bệnh nhân bất tỉnh, cần xem tiền sử dị ứng") == 2  # the opening, and its audit record
    assert 'class="emergency' in html and "Mở hồ sơ khẩn cấp" in html and "Phòng khám Đa khoa Thiện Tâm" in html
    entries = html.split('<ol class="log">')[1].split("<li")[1:3]  # newest first: the doctor's read came after the opening
    assert "Xem: thông tin hành chính" in entries[0] and "Mở hồ sơ khẩn cấp" in entries[1]
    assert "Xem toàn bộ hồ sơ" not in html
    assert "Xem toàn bộ hồ sơ" in browser.get(f"/healthbook/{a.patient_id}/access-log?all=1").get_data(as_text=True)


def test_data_requests_and_why_deletion_is_refused(store, world, signed_in):
    a = world.a
    browser = signed_in(a)
    path = f"/healthbook/{a.patient_id}/requests"
    page = browser.get(path).get_data(as_text=True)
    kept = data_requests.deletion_outlook(store, a.patient_id).kept_until
    assert kept.strftime("%d/%m/%Y") in page and "Thông tư 33/2025/TT-BYT" in page
    bad = browser.post(path, {"kind": "deletion", "text": "x", "csrf_token": csrf_token(browser, path)})
    assert bad.status_code == 422 and "từ 5 đến 2000 ký tự" in bad.get_data(as_text=True)
    sent = browser.post(path, {"kind": "deletion", "text": "Xin xóa toàn bộ hồ sơ của tôi", "csrf_token": csrf_token(browser, path)})
    assert sent.status_code == 302
    page = browser.get(sent.headers["Location"]).get_data(as_text=True)
    [task] = data_requests.of_patient(store, context_of(store, a.patient_id), a.patient_id)
    deadline = date.fromisoformat(task["restriction"]["period"]["end"]).strftime("%d/%m/%Y")
    assert "Xin xóa toàn bộ hồ sơ của tôi" in page and "Đã gửi, đang chờ xử lý" in page and deadline in page
    assert f"Ngày gửi: {hb.day(task['authoredOn'])}" in page  # shown in Vietnam time


def test_the_sharing_page_lists_the_facilities_caring_for_me_and_ends_one(store, world, signed_in):
    a, clinic = world.a, world.orgs[0]
    doctor = policy.staff_context("acct-bs-minh", clinic, "doctor")
    assert resources.read(store, doctor, "Patient", a.patient_id)
    browser = signed_in(a)
    sharing = f"/healthbook/{a.patient_id}/sharing"
    page = browser.get(sharing).get_data(as_text=True)
    section = page.split('id="h-care"')[1].split("</section>")[0]
    name = json.loads(resources.read(store, OPS, "Organization", clinic).body)["name"]
    assert name in section and "Cơ sở ghi nhận đang điều trị" in section and "90 ngày" in section
    ended = browser.post(f"{sharing}/care/{clinic}/end", {"csrf_token": csrf_token(browser, sharing)})
    assert ended.status_code == 302 and ended.headers["Location"].endswith("?m=ended")
    assert name not in browser.get(sharing).get_data(as_text=True).split('id="h-care"')[1].split("</section>")[0]
    assert healthbook_privacy.caring(store, context_of(store, a.patient_id), a.patient_id) == []
    with pytest.raises(FhirError) as caught:  # the facility no longer sees the record
        resources.read(store, doctor, "Patient", a.patient_id)
    assert caught.value.status == 404
