"""The clinic in a real Chromium through gunicorn: a doctor signs in, registers a patient from a
CCCD QR payload, records a visit (vitals, two diagnoses, a prescription), signs it, finds it in the
chart and, through the FHIR API, as standard resources that can no longer be changed (409).
Screenshots of each key screen go to artifacts/screenshots/."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from ehr.services import accounts, resources, totp
from ehr.services.context import AccessContext
from ehr.store.keys import now_us

OPS = AccessContext.operator("test")
PASSWORD = "đúng-mật-khẩu-9173"
QR = "079190012345|023456789|Nguyễn Thị Ngọc Ánh|15031990|Nữ|Số 12 Nguyễn Trãi, Phường Bến Thành, TP Hồ Chí Minh|15082021"
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_doctor_registers_records_signs_and_the_api_sees_standard_resources(page, site, store):
    org = resources.create(store, OPS, {"resourceType": "Organization", "name": "Phòng khám Bến Thành", "active": True}).version.logical_id
    accounts.create_staff(store, OPS, username="bs.lan", role="doctor", organization_id=org, display_name="BS. Trần Lan",
                          password=PASSWORD, now=now_us())
    page.goto("/auth/login?next=/clinic/")
    page.fill("#login", "bs.lan")
    page.fill("#password", PASSWORD)
    shot(page, "01-login")
    page.click("button[type=submit]")
    secret = re.search(r"[A-Z2-7]{32}", page.locator("code").first.inner_text()).group(0)
    page.fill("input[name=code]", totp.code_at(secret, now_us()))
    page.click("main button[type=submit]")
    page.wait_for_url("**/clinic/")
    shot(page, "02-today")

    page.goto("/clinic/patients/new")
    page.fill("#f-qr", QR)
    page.click("button[value=qr]")
    assert page.input_value("#f-full_name") == "Nguyễn Thị Ngọc Ánh"
    page.fill("#f-phone", "0912345678")
    shot(page, "03-register")
    page.click("button[value=save]")
    page.wait_for_url(re.compile(r".*/clinic/patients/[0-9a-f-]{36}.*"))
    patient_id = re.search(r"/clinic/patients/([0-9a-f-]{36})", page.url).group(1)

    page.click("text=Khám bệnh")
    page.fill("#f-reason", "Sốt, ho 3 ngày")
    for field, value in {"systolic": "125", "diastolic": "82", "heart_rate": "90", "temperature": "38.4", "spo2": "97",
                         "height": "158", "weight": "52"}.items():
        page.fill(f"#f-{field}", value)
    page.fill("#f-dx-0-code", "J06.9")
    page.fill("#f-dx-1-code", "E11.9")
    page.fill("#f-rx-0-drug", "Paracetamol 500 mg")
    page.fill("#f-rx-0-dose", "1")
    page.fill("#f-rx-0-unit", "viên")
    page.select_option("#f-rx-0-route", "26643006")
    page.fill("#f-rx-0-frequency", "3")
    page.fill("#f-rx-0-days", "5")
    page.fill("#f-rx-0-quantity", "15")
    shot(page, "04-visit-form")
    page.click("main form button[type=submit]:has-text('Lưu lượt khám')")
    page.wait_for_url(re.compile(r".*/clinic/visits/[0-9a-f-]{36}$"))
    encounter_id = page.url.rsplit("/", 1)[1]
    page.click("text=Ký và kết thúc lượt khám")
    page.wait_for_selector("#signature")
    assert "chữ ký hợp lệ" in page.inner_text("#signature")
    shot(page, "05-signed-visit")

    page.goto(f"/clinic/patients/{patient_id}")
    chart = page.inner_text("main")
    assert "J06.9" in chart and "E11.9" in chart and "Paracetamol 500 mg" in chart
    shot(page, "06-chart")

    api = httpx.Client(base_url=site.base + "/fhir", headers={"Accept": "application/fhir+json"})
    conditions = api.get("/Condition", params={"encounter": f"Encounter/{encounter_id}"}).json()
    codes = sorted(e["resource"]["code"]["coding"][0]["code"] for e in conditions["entry"])
    assert codes == ["E11.9", "J06.9"]
    observations = api.get("/Observation", params={"patient": patient_id, "code": "http://loinc.org|39156-5"}).json()
    assert observations["entry"][0]["resource"]["valueQuantity"]["code"] == "kg/m2"
    condition = conditions["entry"][0]["resource"]
    changed = api.put(f"/Condition/{condition['id']}", content=json.dumps(condition), headers={"Content-Type": "application/fhir+json"})
    assert changed.status_code == 409 and changed.json()["resourceType"] == "OperationOutcome"
