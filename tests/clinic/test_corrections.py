"""Corrections with a trail, clinicians named, one list per patient, role-shaped visit forms."""

from __future__ import annotations

import re
import uuid

from clinic_helpers import post_form
from ehr.fhir import jsonio
from ehr.services import policy, resources, search
from ehr.services.context import AccessContext

OPS = AccessContext.operator("test")


def _register(browser, **extra):
    data = {"action": "save", "cccd": "001190012345", "full_name": "Nguyễn Thị Lan", "birth_date": "01/01/1990",
            "gender": "female", "ethnicity": "01", "nationality": "VN", "phone": "0912345678", **extra}
    response = post_form(browser, "/clinic/patients/new", data)
    assert response.status_code == 302
    return response.headers["Location"].split("/")[-1].split("?")[0]


def _visit(browser, pid, path=None, **fields):
    path = path or f"/clinic/patients/{pid}/visits/new"
    page = browser.get(path).get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    form = {"token": token, "reason": "Sốt, ho", **fields}
    queued = re.search(r'name="encounter" value="([^"]+)"', page)
    if queued:
        form["encounter"] = queued.group(1)
    response = post_form(browser, path.split("?")[0], form, page=path)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    return response.headers["Location"].split("/")[-1].split("?")[0]


def _all(store, rtype, pid):
    param = "beneficiary" if rtype == "Coverage" else "patient"
    page = search.search(store, OPS, rtype, [(param, f"Patient/{pid}"), ("_count", "100")])
    return [jsonio.loads_stored(v.body) for v, mode in page.entries if mode == "match"]


def _read(store, rtype, rid):
    return jsonio.loads_stored(resources.read(store, OPS, rtype, rid).body)


def test_every_item_names_the_signed_in_clinician(signed_in, store):
    browser = signed_in("doctor")
    pid = _register(browser)
    eid = _visit(browser, pid, systolic="120", diastolic="80", **{"dx-0-code": "J02.9", "rx-0-drug": "Paracetamol 500 mg",
                                                                   "rx-0-frequency": "3", "rx-0-days": "3", "note": "Họng đỏ"})
    encounter = _read(store, "Encounter", eid)
    doctor = encounter["participant"][0]["individual"]
    assert doctor["reference"].startswith("Practitioner/") and doctor["display"] == "Nguyễn Văn doctor"
    assert _read(store, *doctor["reference"].split("/"))["name"][0]["text"] == "Nguyễn Văn doctor"
    assert [c["recorder"] for c in _all(store, "Condition", pid)] == [doctor]
    assert _all(store, "Condition", pid)[0]["code"]["coding"][0]["version"] == "QĐ 4469/2020"  # the list it was coded with
    assert [m["requester"] for m in _all(store, "MedicationRequest", pid)] == [doctor]
    assert _all(store, "Composition", pid)[0]["author"][0] == doctor
    assert doctor in _all(store, "Observation", pid)[0]["performer"]
    assert "Nguyễn Văn doctor" in browser.get(f"/clinic/visits/{eid}").get_data(as_text=True)
    assert post_form(browser, f"/clinic/visits/{eid}/sign", {}, page=f"/clinic/visits/{eid}").status_code == 302
    from ehr.services import healthbook

    book = healthbook.book(store, policy.patient_context("acct-me", pid), pid)
    assert book.visits[0].doctor == "Nguyễn Văn doctor"  # the treating doctor, not the clinic's name


def test_a_nurse_gets_the_nursing_part_only(signed_in, store):
    browser = signed_in("nurse")
    pid = _register(browser)
    form = browser.get(f"/clinic/patients/{pid}/visits/new").get_data(as_text=True)
    assert 'name="systolic"' in form and 'name="note"' in form
    assert 'name="dx-0-code"' not in form and 'name="rx-0-drug"' not in form and 'name="advice"' not in form
    page = browser.get(f"/clinic/patients/{pid}/visits/new").get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    refused = post_form(browser, f"/clinic/patients/{pid}/visits/new", {"token": token, "reason": "Đo huyết áp", "dx-0-code": "I10"})
    assert refused.status_code == 422 and "do bác sĩ ghi" in refused.get_data(as_text=True)
    assert _all(store, "Encounter", pid) == []
    _visit(browser, pid, systolic="150", diastolic="95", note="Đo lại sau 15 phút")
    assert len(_all(store, "Observation", pid)) == 1 and _all(store, "Condition", pid) == []


def test_an_unsigned_visit_is_edited_with_the_old_items_kept_as_replaced(signed_in, store):
    browser = signed_in("doctor")
    pid = _register(browser)
    eid = _visit(browser, pid, **{"dx-0-code": "A00", "temperature": "38.5"})
    form = browser.get(f"/clinic/visits/{eid}/edit").get_data(as_text=True)
    assert 'value="A00"' in form and 'value="38.5"' in form and 'value="Sốt, ho"' in form
    assert _visit(browser, pid, path=f"/clinic/visits/{eid}/edit", **{"dx-0-code": "J02.9", "temperature": "38.5"}) == eid
    conditions = {c["code"]["coding"][0]["code"]: c for c in _all(store, "Condition", pid)}
    assert conditions["A00"]["verificationStatus"]["coding"][0]["code"] == "entered-in-error"
    assert "clinicalStatus" not in conditions["A00"]
    assert conditions["J02.9"]["clinicalStatus"]["coding"][0]["code"] == "active"
    encounter = _read(store, "Encounter", eid)
    assert [d["condition"]["reference"] for d in encounter["diagnosis"]] == [f"Condition/{conditions['J02.9']['id']}"]
    page = browser.get(f"/clinic/visits/{eid}").get_data(as_text=True)
    assert "Đã thay thế / nhập nhầm" in page and "Observation" not in page and "Condition" not in page
    assert "Nhiệt độ: 38.5" in page and "Body temperature" not in page  # measures by their Vietnamese names
    chart = browser.get(f"/clinic/patients/{pid}").get_data(as_text=True)
    assert "J02.9" in chart and "A00" not in chart


def test_a_cancelled_visit_stays_for_staff_and_leaves_the_health_book(signed_in, store):
    browser = signed_in("doctor")
    pid = _register(browser)
    eid = _visit(browser, pid, **{"dx-0-code": "J02.9", "systolic": "120", "diastolic": "80"})
    assert post_form(browser, f"/clinic/visits/{eid}/cancel", {}, page=f"/clinic/visits/{eid}").status_code == 302
    assert _read(store, "Encounter", eid)["status"] == "entered-in-error"
    assert _all(store, "Observation", pid)[0]["status"] == "entered-in-error"
    page = browser.get(f"/clinic/visits/{eid}").get_data(as_text=True)
    assert "đã bị hủy (nhập nhầm)" in page
    assert "Đã hủy (nhập nhầm)" in browser.get(f"/clinic/patients/{pid}").get_data(as_text=True)
    from ehr.services import healthbook

    book = healthbook.book(store, policy.patient_context("acct-me", pid), pid)
    assert book.visits == [] and book.illnesses == []


def test_a_signed_diagnosis_is_corrected_by_a_signed_amendment(signed_in, store):
    browser = signed_in("doctor")
    pid = _register(browser)
    eid = _visit(browser, pid, **{"dx-0-code": "A00"})
    assert post_form(browser, f"/clinic/visits/{eid}/sign", {}, page=f"/clinic/visits/{eid}").status_code == 302
    assert browser.get(f"/clinic/visits/{eid}/edit").headers["Location"].endswith(f"/clinic/visits/{eid}/amend")
    condition = _all(store, "Condition", pid)[0]
    item = f"Condition/{condition['id']}"
    short = post_form(browser, f"/clinic/visits/{eid}/amend", {"item": item, "code": "J02.9", "reason": "x", "action": "recode"})
    assert short.status_code == 422 and "Lý do sửa đổi" in short.get_data(as_text=True)
    done = post_form(browser, f"/clinic/visits/{eid}/amend",
                     {"item": item, "code": "J02.9", "reason": "Nhập nhầm mã bệnh", "action": "recode"})
    assert done.status_code == 302
    now = _read(store, "Condition", condition["id"])
    assert now["code"]["coding"][0]["code"] == "J02.9"
    old = resources.vread(store, OPS, "Condition", condition["id"], "1")
    assert jsonio.loads_stored(old.body)["code"]["coding"][0]["code"] == "A00"
    provenances = [p for p in _all(store, "Provenance", pid) if p.get("reason")]
    assert provenances[0]["reason"] == [{"text": "Nhập nhầm mã bệnh"}]
    page = browser.get(f"/clinic/visits/{eid}").get_data(as_text=True)
    assert "Nhập nhầm mã bệnh" in page and "J02.9" in page


def test_allergies_and_problems_are_one_list_per_patient(signed_in, store):
    browser = signed_in("doctor")
    pid = _register(browser)
    first = _visit(browser, pid, **{"dx-0-code": "I10", "al-0-substance": "Penicillin", "al-0-criticality": "high"})
    second = _visit(browser, pid, **{"dx-0-code": "I10", "al-0-substance": "penicilin", "al-1-substance": "PENICILLIN"})
    assert len(_all(store, "AllergyIntolerance", pid)) == 2  # "penicilin" (one l) is another word; "PENICILLIN" is the same
    conditions = _all(store, "Condition", pid)
    assert len(conditions) == 1
    for eid in (first, second):
        assert _read(store, "Encounter", eid)["diagnosis"][0]["condition"]["reference"] == f"Condition/{conditions[0]['id']}"
    chart = browser.get(f"/clinic/patients/{pid}").get_data(as_text=True)
    assert chart.count("I10 ") == 1
    resolved = post_form(browser, f"/clinic/patients/{pid}/lists/Condition/{conditions[0]['id']}", {"action": "resolve"},
                         page=f"/clinic/patients/{pid}")
    assert resolved.status_code == 302
    assert _read(store, "Condition", conditions[0]["id"])["clinicalStatus"]["coding"][0]["code"] == "resolved"
    assert "I10 " not in browser.get(f"/clinic/patients/{pid}").get_data(as_text=True)


def test_the_desk_corrects_the_card_with_a_new_version(signed_in, store):
    browser = signed_in("receptionist")
    pid = _register(browser)
    form = browser.get(f"/clinic/patients/{pid}/edit").get_data(as_text=True)
    assert 'value="Nguyễn Thị Lan"' in form and 'value="0912345678"' in form and 'value="01/01/1990"' in form
    bad = post_form(browser, f"/clinic/patients/{pid}/edit", {"cccd": "001190012345", "full_name": "Nguyễn Thị Lan",
                                                              "birth_date": "01/01/1990", "gender": "female", "phone": "12"})
    assert bad.status_code == 422 and 'value="12"' in bad.get_data(as_text=True)
    done = post_form(browser, f"/clinic/patients/{pid}/edit", {
        "cccd": "001190012345", "full_name": "Nguyễn Thị Lan Anh", "birth_date": "01/01/1990", "gender": "female",
        "phone": "0987654321", "ethnicity": "01", "nationality": "VN", "bhyt": "DN4010123456789"})
    assert done.status_code == 302 and "updated=1" in done.headers["Location"]
    patient = _read(store, "Patient", pid)
    assert patient["name"][0]["text"] == "Nguyễn Thị Lan Anh" and patient["telecom"][0]["value"] == "0987654321"
    assert jsonio.loads_stored(resources.vread(store, OPS, "Patient", pid, "1").body)["name"][0]["text"] == "Nguyễn Thị Lan"
    assert len(_all(store, "Coverage", pid)) == 1
    assert "Đã lưu thông tin hành chính" in browser.get(done.headers["Location"]).get_data(as_text=True)


def test_a_visit_is_recorded_into_the_queued_encounter(signed_in, store):
    browser = signed_in("doctor")
    pid = _register(browser)
    walk_in = _read(store, "Encounter", _visit(browser, pid, systolic="120", diastolic="80"))
    org = walk_in["serviceProvider"]["reference"].split("/")[1]
    arrived = {"resourceType": "Encounter", "status": "arrived", "class": walk_in["class"], "subject": walk_in["subject"],
               "serviceProvider": walk_in["serviceProvider"], "period": {"start": walk_in["period"]["start"]},
               "identifier": [{"system": "https://id.example/queue/x/2026-12-03", "value": "7"}]}
    desk = policy.staff_context(str(uuid.uuid4()), org, "receptionist")
    queue_id = resources.create(store, desk, arrived).version.logical_id
    eid = _visit(browser, pid, path=f"/clinic/patients/{pid}/visits/new?encounter={queue_id}", temperature="37.5")
    assert eid == queue_id
    recorded = _read(store, "Encounter", eid)
    assert recorded["status"] == "in-progress" and recorded["statusHistory"][-1]["status"] == "arrived"
    assert {"system": "https://id.example/queue/x/2026-12-03", "value": "7"} in recorded["identifier"]
