"""Printed papers: the prescription, the visit summary, the lab sheet and the activation slip are
PDFs whose text carries the patient's name with its diacritics, the drug lines and the prescriber.
PNG renders of every page go to artifacts/screenshots/paper-*.png for a person to look at."""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pypdfium2
import pytest
from pypdf import PdfReader

from auth.auth_helpers import OPS, PASSWORD, Browser
from clinic_helpers import post_form, sign_in
from ehr.services import accounts, resources

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
NAME = "Nguyễn Thị Ánh Tuyết"
DOCTOR = "Trần Quốc Việt"
LICENCE = "001234/HNO-CCHN"
CCCD = "001190012345"
BHYT = "DN4010123456789"


def _text(body: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(body)).pages)


def _png(body: bytes, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    document = pypdfium2.PdfDocument(body)
    for i in range(len(document)):
        document[i].render(scale=2).to_pil().save(SHOTS / f"paper-{name}-{i + 1}.png")
    document.close()


def _pdf(browser: Browser, path: str, name: str) -> str:
    response = browser.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Cache-Control"] == "no-store"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("inline; filename=\"") and "filename*=UTF-8''" in disposition
    assert disposition.encode("ascii")  # the header itself is ASCII; the UTF-8 name is percent-encoded
    body = response.get_data()
    assert body.startswith(b"%PDF-")
    _png(body, name)
    return _text(body)


@pytest.fixture
def facility(store):
    return resources.create(store, OPS, {"resourceType": "Organization", "name": "Phòng khám Đa khoa Hòa Bình", "active": True}).version.logical_id


def _staff(store, clock, facility, role, name, licence=None):
    username = f"{role}.papers.{facility[:6]}"
    accounts.create_staff(store, OPS, username=username, role=role, organization_id=facility, display_name=name,
                          password=PASSWORD, now=clock(), licence=licence)
    return username


def _visit(browser, clock):
    registered = post_form(browser, "/clinic/patients/new", {
        "action": "save", "cccd": CCCD, "full_name": NAME, "birth_date": "15/03/2021", "gender": "female", "ethnicity": "01",
        "nationality": "VN", "phone": "0912345678", "address_line": "Số 12 ngõ 34 phố Hàng Bạc", "bhyt": BHYT})
    assert registered.status_code == 302, registered.get_data(as_text=True)[:1500]
    pid = registered.headers["Location"].split("/")[-1].split("?")[0]
    path = f"/clinic/patients/{pid}/visits/new"
    page = browser.get(path).get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    revisit = (_today(clock) + timedelta(days=7)).strftime("%d/%m/%Y")
    form = {"token": token, "reason": "Sốt, ho, đau họng", "temperature": "38.5", "heart_rate": "96", "blood_group": "LA21325-8",
            "dx-0-code": "J02.9", "dx-1-code": "R50.9",
            "rx-0-drug": "Paracetamol 250 mg", "rx-0-dose": "1", "rx-0-unit": "gói", "rx-0-route": "26643006", "rx-0-frequency": "3",
            "rx-0-days": "3", "rx-0-quantity": "9", "rx-0-instructions": "Uống khi sốt trên 38,5 độ, cách nhau ít nhất 6 giờ",
            "rx-1-drug": "Amoxicillin 250 mg", "rx-1-dose": "0.5", "rx-1-unit": "viên", "rx-1-route": "26643006", "rx-1-frequency": "2",
            "rx-1-days": "5", "rx-1-quantity": "5", "rx-1-instructions": "Uống sau ăn",
            "advice": "Uống nhiều nước, ăn đồ lỏng", "note": "Họng đỏ, amidan sưng", "revisit": revisit}
    saved = post_form(browser, path, form)
    assert saved.status_code == 302, saved.get_data(as_text=True)[:3000]
    return pid, saved.headers["Location"].split("/")[-1].split("?")[0], revisit


def _today(clock):
    return datetime.fromtimestamp(clock() / 1_000_000, tz=ZoneInfo("Asia/Ho_Chi_Minh")).date()


def test_the_visit_papers_carry_the_patient_the_drugs_and_the_prescriber(browser, store, clock, facility):
    sign_in(browser, clock, _staff(store, clock, facility, "doctor", DOCTOR, LICENCE))
    pid, eid, revisit = _visit(browser, clock)
    visit_page = browser.get(f"/clinic/visits/{eid}").get_data(as_text=True)
    assert f'href="/clinic/visits/{eid}/prescription.pdf"' in visit_page and f'href="/clinic/visits/{eid}/lab.pdf"' in visit_page

    text = _pdf(browser, f"/clinic/visits/{eid}/prescription.pdf", "prescription")
    today = _today(clock).strftime("%d/%m/%Y")
    flat = " ".join(text.split())
    for expected in (NAME, CCCD, BHYT, "ĐƠN THUỐC", "J02.9", "R50.9", "PHÒNG KHÁM ĐA KHOA HÒA BÌNH", "Số 12 ngõ 34 phố Hàng Bạc",
                     "Paracetamol 250 mg", "SL: 9 gói", "Uống 1 gói/lần, 3 lần/ngày, trong 3 ngày",
                     "Uống khi sốt trên 38,5 độ, cách nhau ít nhất 6 giờ",
                     "Amoxicillin 250 mg", "SL: 5 viên", "Uống 0,5 viên/lần, 2 lần/ngày, trong 5 ngày. Uống sau ăn",
                     DOCTOR, LICENCE, "Mã đơn thuốc", "Ngày tái khám: " + revisit, "tháng tuổi", "Uống nhiều nước, ăn đồ lỏng",
                     f"Ngày {today[:2]} tháng {today[3:5]} năm {today[6:]}"):
        assert expected in flat, (expected, flat)

    summary = " ".join(_pdf(browser, f"/clinic/visits/{eid}/summary.pdf", "summary").split())
    for expected in (NAME, "TÓM TẮT LƯỢT KHÁM", "Sốt, ho, đau họng", "Nhiệt độ", "38,5 °C", "Họng đỏ, amidan sưng", "Paracetamol 250 mg",
                     "Amoxicillin 250 mg", DOCTOR, LICENCE, revisit, "J02.9"):
        assert expected in summary, (expected, summary)

    lab = " ".join(_pdf(browser, f"/clinic/visits/{eid}/lab.pdf", "lab").split())
    for expected in (NAME, "PHIẾU KẾT QUẢ XÉT NGHIỆM", "Nhóm máu ABO và Rh", "882-1", DOCTOR):
        assert expected in lab, (expected, lab)

    english = " ".join(_pdf(browser, f"/clinic/visits/{eid}/prescription.pdf?lang=en", "prescription-en").split())
    for expected in (NAME, "PRESCRIPTION", "Qty: 9 gói", "0.5 viên", "2 times a day", revisit,
                     "Examining doctor", LICENCE, "national prescription code", "months old"):
        assert expected in english, (expected, english)
    assert "Ngày tái khám" not in english


def test_the_activation_slip_prints_the_code_just_shown_and_a_receptionist_gets_no_prescription(browser, app, store, clock, facility):
    sign_in(browser, clock, _staff(store, clock, facility, "doctor", DOCTOR, LICENCE))
    pid, eid, _revisit = _visit(browser, clock)
    browser.logout()
    sign_in(browser, clock, _staff(store, clock, facility, "receptionist", "Lê Thị Hoa"))
    for paper in ("prescription", "summary", "lab"):
        assert browser.get(f"/clinic/visits/{eid}/{paper}.pdf").status_code == 403
    shown = post_form(browser, f"/clinic/patients/{pid}/activation", {}, page=f"/clinic/patients/{pid}").get_data(as_text=True)
    code = re.search(r'id="activation-code">([A-Z0-9-]+)<', shown).group(1)
    assert f'action="/clinic/patients/{pid}/activation-slip.pdf"' in shown and f'value="{code}"' in shown
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', shown).group(1)
    response = browser.post(f"/clinic/patients/{pid}/activation-slip.pdf", {"code": code, "csrf_token": token})
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Cache-Control"] == "no-store"
    _png(response.get_data(), "activation")
    slip = " ".join(_text(response.get_data()).split())
    for expected in (NAME, CCCD, code, "/auth/activate", "PHÒNG KHÁM ĐA KHOA HÒA BÌNH"):
        assert expected in slip, (expected, slip)
    # A code that is not this patient's live one prints nothing.
    assert browser.post(f"/clinic/patients/{pid}/activation-slip.pdf", {"code": "AAAA-BBBB-CCCC-DDDD", "csrf_token": token}).status_code == 410


def test_another_facility_gets_404(browser, store, clock, facility):
    sign_in(browser, clock, _staff(store, clock, facility, "doctor", DOCTOR, LICENCE))
    pid, eid, _revisit = _visit(browser, clock)
    browser.logout()
    other = resources.create(store, OPS, {"resourceType": "Organization", "name": "Phòng khám Khác", "active": True}).version.logical_id
    sign_in(browser, clock, _staff(store, clock, other, "doctor", "Phạm Văn Nam", "009999/HCM-CCHN"))
    for paper in ("prescription", "summary", "lab"):
        response = browser.get(f"/clinic/visits/{eid}/{paper}.pdf")
        assert response.status_code == 404 and not response.get_data().startswith(b"%PDF")
