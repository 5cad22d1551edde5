"""Every page of the clinic blueprint, enumerated from the URL map (a new page cannot be missed),
passes axe-core with no serious or critical violation, in Vietnamese and in English.

axe-core comes from the npm registry (`.ci/run` installs it into .cache/axe; EHR_AXE_JS overrides)."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import pytest

from ehr.fhir.visit import Visit
from ehr.services import accounts, care, policy, resources, totp, visits
from ehr.services.context import AccessContext
from ehr.store.keys import now_us
from datetime import datetime, timezone

OPS = AccessContext.operator("test")
PASSWORD = "đúng-mật-khẩu-9173"
AXE = Path(os.environ.get("EHR_AXE_JS") or Path(__file__).resolve().parents[2] / ".cache/axe/node_modules/axe-core/axe.min.js")
NOT_PAGES = {"clinic.icd10_search", "clinic.catalogue_search"}  # JSON for the pickers, not pages
ADMIN_PAGES = {"clinic.requests_queue", "clinic.staff_list", "clinic.staff_new"}
DOCTOR_PAGES = {"clinic.amend_visit"}  # a signed visit's amendments


@pytest.fixture
def axe() -> Path:
    if not AXE.exists():
        if os.environ.get("EHR_REQUIRE_BROWSER") == "1":
            pytest.fail(f"axe-core is required but missing at {AXE} (npm install --prefix .cache/axe axe-core@4)")
        pytest.skip("axe-core not installed (npm install --prefix .cache/axe axe-core@4)")
    return AXE


def _signed_in_receptionist_and_ids(page, store):
    org = resources.create(store, OPS, {"resourceType": "Organization", "name": "Trạm y tế", "active": True}).version.logical_id
    patient = resources.create(store, OPS, {"resourceType": "Patient", "name": [{"text": "Phạm Văn Đức"}], "birthDate": "1980-02-03"}).version.logical_id
    care.record(store, OPS, patient, org)
    doctor = policy.staff_context(str(uuid.uuid4()), org, "doctor")
    encounter = visits.record(store, doctor, Visit(patient_id=patient, organization_id=org, token=str(uuid.uuid4()),
                                                    started=datetime.now(timezone.utc), reason="Đau đầu"))
    for username, role in (("yta.hoa", "nurse"), ("qt.minh", "admin"), ("bs.an", "doctor")):
        accounts.create_staff(store, OPS, username=username, role=role, organization_id=org, display_name=username,
                              password=PASSWORD, now=now_us())
    sign_in(page, "yta.hoa")
    return {"patient_id": patient, "encounter_id": encounter}


def sign_in(page, username: str) -> None:
    page.goto("/auth/login")
    page.fill("#login", username)
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    if "/auth/totp/enrol" in page.url:  # admins enrol a second factor first
        secret = re.search(r"[A-Z2-7]{32}", page.locator("code").first.inner_text()).group(0)
        page.fill("input[name=code]", totp.code_at(secret, now_us()))
        page.click("main button[type=submit]")


def test_every_clinic_page_passes_axe(app, page, store, axe):
    ids = _signed_in_receptionist_and_ids(page, store)
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("clinic.") and "GET" in r.methods and r.endpoint not in NOT_PAGES
             and not r.rule.endswith(".pdf")]  # printed papers are PDFs (tests/clinic/test_papers.py)
    assert len(rules) >= 7
    checked = []
    for rule in sorted(rules, key=lambda r: (r.endpoint in ADMIN_PAGES, r.endpoint in DOCTOR_PAGES)):
        for pages, who in ((ADMIN_PAGES, "qt.minh"), (DOCTOR_PAGES, "bs.an")):
            if rule.endpoint in pages and who not in checked:
                page.context.clear_cookies()
                sign_in(page, who)
                checked.append(who)
        path = rule.rule
        for name, value in ids.items():
            path = path.replace(f"<{name}>", value)
        for lang in ("vi", "en"):
            response = page.goto(f"{path}?lang={lang}")
            assert response.status == 200 and "/auth/login" not in page.url, path
            assert page.locator("html").get_attribute("lang") == lang
            page.evaluate(axe.read_text("utf-8"))  # DevTools evaluation: the page's CSP forbids inline script
            result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
            serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
                       if v["impact"] in ("serious", "critical")]
            assert not serious, f"{path} ({lang}): {serious}"
            checked.append(f"{path}?lang={lang}")
    checked = [c for c in checked if c.startswith("/")]
    print(f"\naxe-core: {len(checked)} page views of {len(rules)} clinic pages, no serious or critical violation")
