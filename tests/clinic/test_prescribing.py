"""Safe prescribing on the visit form: allergy and duplicate warnings that need an override with a
reason (recorded as a DetectedIssue, audited), duration and quantity checks, the decimal comma,
medicine lines with dose, frequency, duration and quantity."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from auth.auth_helpers import audit_rows
from clinic_helpers import post_form
from ehr.fhir import drug_classes, jsonio
from ehr.services import resources, search
from ehr.services.context import AccessContext

OPS = AccessContext.operator("test")
_OVERRIDE = re.compile(r'name="rx-(\d+)-override" value="([0-9a-f]+)"')


def _register(browser, cccd="001190012345"):
    data = {"action": "save", "cccd": cccd, "full_name": "Nguyễn Thị Lan", "birth_date": "01/01/1990",
            "gender": "female", "ethnicity": "01", "nationality": "VN", "phone": "0912345678"}
    saved = post_form(browser, "/clinic/patients/new", data)
    assert saved.status_code == 302
    return saved.headers["Location"].split("/")[-1].split("?")[0]


def _post_visit(browser, pid, fields):
    path = f"/clinic/patients/{pid}/visits/new"
    token = re.search(r'name="token" value="([^"]+)"', browser.get(path).get_data(as_text=True)).group(1)
    return post_form(browser, path, {"token": token, "reason": "Sốt, ho", **fields})


def _rx(i=0, drug="Amoxicilin 500 mg", dose="1", frequency="3", days="5", quantity="15", **extra):
    return {f"rx-{i}-drug": drug, f"rx-{i}-dose": dose, f"rx-{i}-unit": "viên", f"rx-{i}-route": "26643006",
            f"rx-{i}-frequency": frequency, f"rx-{i}-days": days, f"rx-{i}-quantity": quantity, **extra}


def _issues(store, request):
    """The DetectedIssues a MedicationRequest references (DetectedIssue has no search parameter)."""
    return [jsonio.loads_stored(resources.read(store, OPS, "DetectedIssue", r["reference"].split("/")[1]).body)
            for r in request.get("detectedIssue") or []]


def _found(store, rtype, pid):
    page = search.search(store, OPS, rtype, [("patient", pid)])
    return [jsonio.loads_stored(v.body) for v, mode in page.entries if mode == "match"]


@pytest.fixture
def doctor_with_allergy(signed_in):
    """A doctor signed in, and a patient with a recorded allergy (substance, criticality)."""
    def make(substance="Penicillin", criticality="high"):
        browser = signed_in("doctor")
        pid = _register(browser)
        first = _post_visit(browser, pid, {"al-0-substance": substance, "al-0-criticality": criticality, "al-0-reaction": "Nổi mày đay"})
        assert first.status_code == 302
        return browser, pid
    return make


def test_amoxicillin_for_a_penicillin_allergy_is_refused_until_overridden_with_a_reason(doctor_with_allergy, store):
    browser, pid = doctor_with_allergy("Penicillin", "high")
    refused = _post_visit(browser, pid, _rx())
    page = html.unescape(refused.get_data(as_text=True))
    assert refused.status_code == 422
    # the warning is on the line (after rx-0-drug, named in aria-describedby), with an override box and a reason field
    assert 'aria-describedby="err-rx-0-drug"' in page
    assert "Amoxicilin 500 mg thuộc nhóm penicillin; bệnh nhân đã ghi nhận dị ứng: Penicillin." in page
    assert "Dị ứng nguy cơ cao" in page and 'name="rx-0-override_reason"' in page
    assert "Penicillin" in page.split('id="rx-patient"')[1].split("</div>")[0]  # the allergy shown above the lines
    assert _found(store, "MedicationRequest", pid) == []
    assert not [r for r in audit_rows(store) if r["resource_type"] in ("MedicationRequest", "DetectedIssue") and r["action"] == "create"]

    signature = _OVERRIDE.search(page).group(2)
    short = _post_visit(browser, pid, _rx(**{"rx-0-override": signature, "rx-0-override_reason": "ok"}))
    assert short.status_code == 422 and "Lý do vẫn kê đơn: nhập từ 5 đến 500 ký tự." in html.unescape(short.get_data(as_text=True))

    reason = "Đã thử test da âm tính, không có thuốc thay thế"
    saved = _post_visit(browser, pid, _rx(**{"rx-0-override": signature, "rx-0-override_reason": reason}))
    assert saved.status_code == 302
    [request] = _found(store, "MedicationRequest", pid)
    [issue] = _issues(store, request)
    [allergy] = _found(store, "AllergyIntolerance", pid)
    assert request["detectedIssue"] == [{"reference": f"DetectedIssue/{issue['id']}"}]
    assert issue["code"]["coding"][0] == {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "ALGY", "display": "Allergy Alert"}
    assert issue["severity"] == "high" and issue["patient"]["reference"] == f"Patient/{pid}"
    assert {i["reference"] for i in issue["implicated"]} == {f"MedicationRequest/{request['id']}", f"AllergyIntolerance/{allergy['id']}"}
    [mitigation] = issue["mitigation"]
    assert mitigation["action"]["text"] == reason
    doctor = mitigation["author"]["reference"]
    assert doctor.startswith("Practitioner/") and doctor == request["requester"]["reference"]
    assert "penicillin" in issue["detail"] and issue["identifiedDateTime"]
    # the creation is audited: who (the doctor's account), what (the DetectedIssue), whose record
    [row] = [r for r in audit_rows(store) if r["resource_type"] == "DetectedIssue" and r["action"] != "read"]
    assert row["action"] == "create" and row["compartment"] == pid and row["outcome"] == "success"
    assert row["principal"] == next(r["principal"] for r in audit_rows(store) if r["resource_type"] == "MedicationRequest" and r["action"] == "create")
    visit_page = browser.get(saved.headers["Location"]).get_data(as_text=True)
    assert "Đã vượt cảnh báo (có lý do)" in visit_page


def test_a_stale_override_does_not_cover_a_changed_line(doctor_with_allergy, store):
    browser, pid = doctor_with_allergy("Penicillin", "high")
    page = _post_visit(browser, pid, _rx()).get_data(as_text=True)
    signature = _OVERRIDE.search(page).group(2)
    other = _post_visit(browser, pid, _rx(drug="Cefuroxim 500 mg", **{"rx-0-override": signature, "rx-0-override_reason": "lý do cũ"}))
    text = html.unescape(other.get_data(as_text=True))
    assert other.status_code == 422 and "nguy cơ dị ứng chéo" in text  # a cephalosporin: beta-lactam cross-reaction
    assert _found(store, "MedicationRequest", pid) == []


@pytest.mark.parametrize(("allergy", "drug", "expected"), [
    ("Sulfonamide", "Co-trimoxazol 480 mg", "thuộc nhóm sulfonamide"),
    ("NSAID", "Ibuprofen 400 mg", "thuộc nhóm NSAID"),
    ("thuốc chống viêm không steroid", "Ibuprofen 400 mg", "thuộc nhóm NSAID"),
    ("nhóm beta-lactam", "Amoxicillin 250 mg", "thuộc nhóm beta-lactam"),
    ("kháng sinh nhóm penicilin", "AMOXICILIN 500MG", "thuộc nhóm penicillin"),
])
def test_class_allergies_in_vietnamese_and_english(doctor_with_allergy, store, allergy, drug, expected):
    browser, pid = doctor_with_allergy(allergy, "low")
    refused = _post_visit(browser, pid, _rx(drug=drug))
    assert refused.status_code == 422 and expected in html.unescape(refused.get_data(as_text=True))
    assert _found(store, "MedicationRequest", pid) == []


def test_the_classes_match_spellings_and_leave_other_drugs_alone():
    def match(drug, allergen):
        return drug_classes.allergy_match(drug_classes.profile([drug]), drug_classes.profile([allergen]))

    assert match("Sulfamethoxazol + trimethoprim", "sulfamid").kind == "class"
    assert match("Acid acetylsalicylic 81 mg", "Aspirin").kind == "ingredient"
    assert match("Diclofenac natri 50mg", "Kháng viêm không steroid").kind == "class"
    assert match("Ceftriaxon 1 g", "Penicillin").kind == "cross"
    assert match("Paracetamol 500 mg", "Penicillin") is None
    assert match("Metformin 500 mg", "Hải sản (seafood)") is None
    assert drug_classes.profile(["x"], ["J01CA04"]).all_classes == {"penicillin", "beta-lactam"}


def test_a_duplicate_of_a_current_medicine_needs_an_override(signed_in, store):
    browser = signed_in("doctor")
    pid = _register(browser)
    assert _post_visit(browser, pid, _rx(drug="Ibuprofen 400 mg")).status_code == 302
    [current] = _found(store, "MedicationRequest", pid)
    again = _post_visit(browser, pid, _rx(drug="Ibuprofen 200mg"))
    page = html.unescape(again.get_data(as_text=True))
    assert again.status_code == 422 and "trùng hoạt chất (ibuprofen) với thuốc đang dùng: Ibuprofen 400 mg." in page
    assert "Ibuprofen 400 mg — 1 viên × 3 lần/ngày × 5 ngày, tổng 15" in page.split('id="rx-patient"')[1]
    signature = _OVERRIDE.search(page).group(2)
    saved = _post_visit(browser, pid, _rx(drug="Ibuprofen 200mg", **{"rx-0-override": signature,
                                                                     "rx-0-override_reason": "Tăng liều theo hẹn"}))
    assert saved.status_code == 302
    [issue] = _issues(store, next(r for r in _found(store, "MedicationRequest", pid) if r.get("detectedIssue")))
    assert issue["code"]["coding"][0]["code"] == "DUPTHPY"
    assert f"MedicationRequest/{current['id']}" in {i["reference"] for i in issue["implicated"]}


def test_two_lines_of_the_same_ingredient_in_one_prescription(signed_in, store):
    browser = signed_in("doctor")
    pid = _register(browser)
    refused = _post_visit(browser, pid, {**_rx(0, drug="Paracetamol 500 mg"), **_rx(1, drug="Paracetamol 250 mg")})
    assert refused.status_code == 422 and "với một thuốc khác trong đơn này" in html.unescape(refused.get_data(as_text=True))


def test_duration_and_quantity_limits(signed_in, store):
    browser = signed_in("doctor")
    pid = _register(browser)
    long = _post_visit(browser, pid, _rx(drug="Paracetamol 500 mg", days="60", quantity="180"))
    page = html.unescape(long.get_data(as_text=True))
    assert long.status_code == 422 and "60 ngày vượt quá 30 ngày" in page
    much = _post_visit(browser, pid, _rx(drug="Paracetamol 500 mg", quantity="40"))
    assert much.status_code == 422 and "Số lượng 40 nhiều hơn liều × số lần/ngày × số ngày (15)." in html.unescape(much.get_data(as_text=True))
    huge = _post_visit(browser, pid, _rx(drug="Paracetamol 500 mg", quantity="5000"))
    text = html.unescape(huge.get_data(as_text=True))
    assert huge.status_code == 422 and "Số lượng tối đa mỗi thuốc là 1000." in text
    assert 'name="rx-0-override"' not in text  # refused outright: nothing to override
    assert _found(store, "MedicationRequest", pid) == []
    # a long course with a reason is recorded
    signature = _OVERRIDE.search(page).group(2)
    saved = _post_visit(browser, pid, _rx(drug="Paracetamol 500 mg", days="60", quantity="180",
                                          **{"rx-0-override": signature, "rx-0-override_reason": "Bệnh mạn tính, ở xa"}))
    assert saved.status_code == 302
    [request] = _found(store, "MedicationRequest", pid)
    assert _issues(store, request)[0]["code"]["coding"][0]["code"] == "DOSEDURH"


def test_the_decimal_comma_is_accepted(signed_in, store):
    browser = signed_in("doctor")
    pid = _register(browser)
    saved = _post_visit(browser, pid, {"temperature": "36,8", "weight": "55,5", **_rx(drug="Paracetamol 500 mg", dose="0,5", quantity="7,5")})
    assert saved.status_code == 302
    values = {o["code"]["coding"][0]["code"]: o["valueQuantity"]["value"] for o in _found(store, "Observation", pid) if "valueQuantity" in o}
    assert str(values["8310-5"]) == "36.8" and str(values["29463-7"]) == "55.5"
    [request] = _found(store, "MedicationRequest", pid)
    assert str(request["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"]) == "0.5"
    assert str(request["dispenseRequest"]["quantity"]["value"]) == "7.5"


def test_medicine_lines_show_dose_frequency_duration_and_quantity(signed_in, store):
    browser = signed_in("doctor")
    pid = _register(browser)
    saved = _post_visit(browser, pid, _rx(drug="Paracetamol 500 mg", **{"rx-0-instructions": "Uống sau ăn"}))
    assert saved.status_code == 302
    chart = html.unescape(browser.get(f"/clinic/patients/{pid}").get_data(as_text=True))
    assert "Paracetamol 500 mg — 1 viên × 3 lần/ngày × 5 ngày, tổng 15; Uống sau ăn" in chart
    visit = html.unescape(browser.get(saved.headers["Location"]).get_data(as_text=True))
    assert "1 viên × 3 lần/ngày × 5 ngày, tổng 15" in visit
    english = html.unescape(browser.get(f"/clinic/patients/{pid}?lang=en").get_data(as_text=True))
    assert "1 viên × 3 times a day × 5 days, total 15" in english


def test_free_text_is_flagged_not_coded(signed_in, store):
    browser = signed_in("doctor")
    pid = _register(browser)
    page = _post_visit(browser, pid, _rx(drug="Thuốc nam tự pha", days="")).get_data(as_text=True)
    assert "chưa mã hóa" not in page  # saved: nothing to show again
    [request] = _found(store, "MedicationRequest", pid)
    assert request["medicationCodeableConcept"] == {"text": "Thuốc nam tự pha"}
    form = _post_visit(browser, pid, {"reason": "", **_rx(drug="Thuốc nam tự pha")}).get_data(as_text=True)
    assert "chưa mã hóa" in form


def test_a_drug_from_the_catalogue_is_coded_and_checked_by_its_ingredient(doctor_with_allergy, store):
    catalogue = pytest.importorskip("ehr.services.catalogue")
    sample = Path(__file__).resolve().parents[2] / "ehr" / "data" / "catalogues" / "drugs.csv"
    catalogue.import_file(store, "drugs", sample)
    browser, pid = doctor_with_allergy("Sulfonamide", "high")
    [item] = [i for i in catalogue.search(store, "drugs", "Co-trimoxazol") if "trimox" in i.name.lower()][:1]
    display = catalogue.item_json(item)["display"]
    refused = _post_visit(browser, pid, _rx(drug=display, **{"rx-0-code": item.code}))
    page = html.unescape(refused.get_data(as_text=True))
    assert refused.status_code == 422 and "thuộc nhóm sulfonamide" in page
    signature = _OVERRIDE.search(page).group(2)
    saved = _post_visit(browser, pid, _rx(drug=display, **{"rx-0-code": item.code, "rx-0-override": signature,
                                                           "rx-0-override_reason": "Không có lựa chọn khác"}))
    assert saved.status_code == 302
    [request] = _found(store, "MedicationRequest", pid)
    coding = request["medicationCodeableConcept"]["coding"][0]
    assert coding["system"] == catalogue.SYSTEMS["drugs"] and coding["code"] == item.code
    assert coding["display"] == display and coding["version"] == catalogue.active_version(store, "drugs")
    assert request["medicationCodeableConcept"]["text"] == display



def test_an_allergy_typed_on_the_same_form_counts_and_a_resubmission_writes_nothing_new(signed_in, store):
    browser = signed_in("doctor")
    pid = _register(browser)
    path = f"/clinic/patients/{pid}/visits/new"
    token = re.search(r'name="token" value="([^"]+)"', browser.get(path).get_data(as_text=True)).group(1)
    form = {"token": token, "reason": "Viêm họng", "al-0-substance": "Penicilin", "al-0-criticality": "high", **_rx()}
    refused = post_form(browser, path, form)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "Dị ứng nguy cơ cao" in html.unescape(page)
    form.update({"rx-0-override": _OVERRIDE.search(page).group(2), "rx-0-override_reason": "Bệnh nhân đã dùng nhiều lần không sao"})
    saved = post_form(browser, path, form)
    again = post_form(browser, path, form)  # a double submission
    assert saved.status_code == again.status_code == 302 and saved.headers["Location"] == again.headers["Location"]
    [request] = _found(store, "MedicationRequest", pid)
    [issue] = _issues(store, request)
    assert [i["reference"] for i in issue["implicated"]] == [f"MedicationRequest/{request['id']}"]
    assert [r["action"] for r in audit_rows(store) if r["resource_type"] == "DetectedIssue" and r["action"] != "read"] == ["create"]
