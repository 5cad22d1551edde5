"""The patient's health book in a real Chromium through gunicorn, on a phone (375x812) and a
desktop, in Vietnamese and English: every section, the charts' points, sharing with a hospital
(and its FHIR API access following), the downloads, the emergency card offline, axe-core on every
page. Every request the browser makes is recorded: none may leave the site.
Screenshots go to artifacts/screenshots/healthbook-*.png."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from access_helpers import bearer, register, token
from healthbook import book_seed as seed

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
AXE = Path(os.environ.get("EHR_AXE_JS") or ROOT / ".cache/axe/node_modules/axe-core/axe.min.js")
SECTIONS = ["overview", "administrative", "history", "visits", "charts", "vaccinations", "access_log", "sharing", "download",
            "emergency_card", "requests"]
NOT_PAGES = {"healthbook.index", "healthbook.download_record"}  # a redirect; the JSON file


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"healthbook-{name}.png"), full_page=True)


@pytest.fixture
def patient(app, store):
    a = seed.patient(store, app.extensions["ehr.signing"])
    seed.account(store, a)
    return a


def _sign_in(page, site, who, lang: str = "vi") -> list[str]:
    """Log in as the patient; returns the live list of every URL the browser requests."""
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(f"/auth/login?lang={lang}&next=/healthbook/")
    page.fill("#login", who.cccd)
    page.fill("#password", seed.PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{site.base}/healthbook/{who.patient_id}/")
    return requested


def _only_this_site(requested: list[str], site) -> None:
    assert requested and not [u for u in requested if not (u.startswith(site.base + "/") or u.startswith(("data:", "blob:", "about:")))]


@pytest.mark.parametrize("width,height,lang", [(375, 812, "vi"), (375, 812, "en"), (1280, 800, "vi"), (1280, 800, "en")])
def test_every_section_on_a_phone_and_a_desktop(page, site, patient, width, height, lang):
    page.set_viewport_size({"width": width, "height": height})
    requested = _sign_in(page, site, patient, lang)
    size = "phone" if width < 500 else "desktop"
    for i, section in enumerate(SECTIONS):
        if section != "emergency_card":
            page.goto(f"/healthbook/{patient.patient_id}/")
            with page.expect_navigation():
                page.locator(".hb-nav a").nth(i).click()
        else:
            page.goto(f"/healthbook/{patient.patient_id}/emergency-card")
        assert page.locator("html").get_attribute("lang") == lang
        page.locator("h1").first.wait_for(state="visible")
        assert page.evaluate("document.documentElement.scrollWidth") <= width, section  # no sideways scrolling
        shot(page, f"{section}-{size}-{lang}")
    page.goto(f"/healthbook/{patient.patient_id}/charts")
    assert page.locator("[data-series=bp] svg g.pt-0").count() == patient.bp_readings
    glucose = page.locator("[data-series='14749-6'] svg g.pt")
    assert glucose.count() == patient.lab_points["14749-6"]
    tip = glucose.first.locator("text.tip")
    assert not tip.is_visible()
    glucose.first.focus()  # a tap or the Tab key shows the value
    assert tip.is_visible() and tip.text_content() == ("7,8" if lang == "vi" else "7.8")
    page.goto(f"/healthbook/{patient.patient_id}/visits")
    with page.expect_navigation():
        page.locator("ol.visits a").first.click()
    assert "I10" in page.inner_text("main") and ("Bệnh chính" if lang == "vi" else "Main diagnosis") in page.inner_text("main")
    shot(page, f"visit-{size}-{lang}")
    _only_this_site(requested, site)


def test_sharing_with_a_hospital_and_its_api_access_follows(page, site, patient, store, secured):
    hospital_org = patient.facilities[1]
    hospital = register(store, "bv-hoa-hao", hospital_org, ["system/*.rs"])
    api = secured.test_client()

    def hospital_reads() -> int:
        return api.get(f"/fhir/Patient/{patient.patient_id}", headers=bearer(token(api, hospital))).status_code

    page.set_viewport_size({"width": 375, "height": 812})
    requested = _sign_in(page, site, patient)
    assert hospital_reads() == 404
    page.goto(f"/healthbook/{patient.patient_id}/sharing")
    page.fill("#q", "hòa hảo")
    with page.expect_navigation():
        page.click("form[role=search] button")
    page.check(f"#org-{hospital_org}")
    page.select_option("#purpose", "TREAT")
    page.select_option("#days", "30")
    with page.expect_navigation():
        page.click("button:has-text('Cho phép truy cập')")
    assert "Đánh dấu ô xác nhận" in page.inner_text("main")  # never agreed by default
    assert hospital_reads() == 404
    page.check("#agree")
    page.click("button:has-text('Cho phép truy cập')")
    page.wait_for_url(re.compile(r".*m=granted$"))
    assert "Phòng khám Đa khoa Hòa Hảo" in page.inner_text(".grants")
    shot(page, "sharing-granted")
    assert hospital_reads() == 200
    page.click(".grants button.danger")
    page.wait_for_url(re.compile(r".*m=revoked$"))
    assert page.locator(".grants").count() == 0
    shot(page, "sharing-revoked")
    assert hospital_reads() == 404
    _only_this_site(requested, site)


def test_downloads_and_the_emergency_card_offline(page, site, patient, tmp_path):
    requested = _sign_in(page, site, patient)
    page.goto(f"/healthbook/{patient.patient_id}/download")
    with page.expect_download() as record:
        page.click("text=Tải toàn bộ hồ sơ (JSON)")
    assert re.fullmatch(r"Sổ-sức-khỏe-điện-tử-\d{4}-\d{2}-\d{2}\.json", record.value.suggested_filename)
    bundle = json.loads(Path(record.value.path()).read_text())
    assert bundle["type"] == "collection" and any(e["resource"]["id"] == patient.patient_id for e in bundle["entry"])
    with page.expect_download() as summary:
        page.locator("ul.downloads a[download]").first.click()
    assert re.fullmatch(r"Tom-tat-dot-kham-\d{4}-\d{2}-\d{2}\.html", summary.value.suggested_filename)
    page.goto(f"/healthbook/{patient.patient_id}/visits/{patient.clinic_visit}/summary")
    assert re.fullmatch(r"Tom-tat-dot-kham-\d{4}-\d{2}-\d{2}", page.title())
    page.emulate_media(media="print")
    assert not page.locator(".no-print").first.is_visible()
    page.pdf(path=str(tmp_path / "summary.pdf"))
    shot(page, "visit-summary-print")
    page.emulate_media(media="screen")

    before = len(requested)
    page.goto(f"/healthbook/{patient.patient_id}/emergency-card")
    assert len(requested) == before + 1  # the page itself and nothing else: it works without the network
    with page.expect_download() as card:
        page.click("text=Lưu thẻ về máy")
    saved = tmp_path / card.value.suggested_filename
    card.value.save_as(saved)
    page.context.set_offline(True)
    page.goto(saved.as_uri())
    assert "Thẻ cấp cứu" in page.inner_text("h1") and "Amlodipin 5 mg" in page.inner_text("main")
    shot(page, "emergency-card-offline")
    page.context.set_offline(False)
    _only_this_site([u for u in requested if not u.startswith("file:")], site)


@pytest.fixture
def axe() -> Path:
    if not AXE.exists():
        if os.environ.get("EHR_REQUIRE_BROWSER") == "1":
            pytest.fail(f"axe-core is required but missing at {AXE} (npm install --prefix .cache/axe axe-core@4)")
        pytest.skip("axe-core not installed (npm install --prefix .cache/axe axe-core@4)")
    return AXE


def test_every_health_book_page_passes_axe(app, page, site, patient, axe):
    _sign_in(page, site, patient)
    ids = {"patient_id": patient.patient_id, "encounter_id": patient.clinic_visit}
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("healthbook.") and "GET" in r.methods and r.endpoint not in NOT_PAGES]
    assert len(rules) >= 13
    for rule in rules:
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: ids[m.group(1)], rule.rule)
        for lang in ("vi", "en"):
            page.goto(f"{path}?lang={lang}")
            page.evaluate(axe.read_text("utf-8"))  # DevTools evaluation: the page's CSP forbids inline script
            result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
            serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
                       if v["impact"] in ("serious", "critical")]
            assert not serious, f"{path} ({lang}): {serious}"
