"""The health-book pages through the Flask test client over HTTPS, signed in as the patient."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest

from auth.auth_helpers import Browser
from ehr.services import accounts, care, healthbook
from ehr.store.keys import now_us
from book_seed import OPS, PASSWORD, context_of, csrf_token

SECTIONS = ["", "administrative", "history", "visits", "charts", "vaccinations", "access-log", "sharing", "download", "emergency-card", "requests"]


@pytest.mark.parametrize("section", SECTIONS)
def test_every_section_opens_in_vietnamese(world, signed_in, section):
    a = world.a
    page = signed_in(a).get(f"/healthbook/{a.patient_id}/{section}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and '<html lang="vi">' in html and a.name in html
    assert page.headers["Cache-Control"] == "no-store"
    assert a.cccd not in html  # the citizen ID is masked everywhere: only its last 3 digits
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing from another site


def test_overview_shows_the_essentials_up_front(world, signed_in, store):
    a = world.a
    html = signed_in(a).get(f"/healthbook/{a.patient_id}/").get_data(as_text=True)
    allergies = [x.substance for x in healthbook.book(store, context_of(store, a.patient_id), a.patient_id).allergies]
    # The diagnosis by the catalogue's name (QĐ 4469), not the text it was recorded with.
    for text in ("*********" + a.cccd[-3:], "Nhóm máu O, Rh(D) dương tính", *allergies, "I10", "Bệnh lý tăng huyết áp",
                 "Lần khám gần nhất", "Lịch tái khám"):
        assert text in html


def test_a_visit_and_its_print_ready_summary(world, signed_in):
    a = world.a
    browser = signed_in(a)
    html = browser.get(f"/healthbook/{a.patient_id}/visits/{a.clinic_visit}").get_data(as_text=True)
    assert html.index("I10") < html.index("E11.9") and "Bệnh chính" in html and "Ăn nhạt, đi bộ 30 phút mỗi ngày." in html
    summary = browser.get(f"/healthbook/{a.patient_id}/visits/{a.clinic_visit}/summary")
    text = summary.get_data(as_text=True)
    day = re.search(r"<title>Tom-tat-dot-kham-(\d{4}-\d{2}-\d{2})</title>", text)
    assert day and "@media print" in text and "<link" not in text and "<script" not in text
    saved = browser.get(f"/healthbook/{a.patient_id}/visits/{a.clinic_visit}/summary?download=1")
    assert saved.headers["Content-Disposition"].startswith(f'attachment; filename="Tom-tat-dot-kham-{day.group(1)}.html"')


def test_charts_have_a_point_per_measurement_and_a_table(world, signed_in):
    a = world.a
    html = signed_in(a).get(f"/healthbook/{a.patient_id}/charts").get_data(as_text=True)
    blocks = dict(re.findall(r'data-series="([^"]+)"(.*?)</section>', html, re.S))
    assert blocks["bp"].count('<g class="pt pt-0"') == a.bp_readings
    assert blocks["14749-6"].count('<g class="pt ') == a.lab_points["14749-6"] and "3,9–6,4" in blocks["14749-6"]
    assert blocks["14749-6"].count("<tr>") == a.lab_points["14749-6"] + 1  # the table fallback


def test_downloads_are_named_in_vietnamese(world, signed_in):
    a = world.a
    browser = signed_in(a)
    record = browser.get(f"/healthbook/{a.patient_id}/download/record.json")
    assert record.mimetype == "application/fhir+json"
    assert re.match(r"""attachment; filename="So-suc-khoe-dien-tu-\d{4}-\d{2}-\d{2}\.json"; filename\*=UTF-8''S%E1%BB%95-""",
                    record.headers["Content-Disposition"])
    assert json.loads(record.data)["entry"][0]["fullUrl"].startswith("https://localhost/fhir/")
    card = browser.get(f"/healthbook/{a.patient_id}/emergency-card?download=1")
    assert "Th%E1%BA%BB-c%E1%BA%A5p-c%E1%BB%A9u.html" in card.headers["Content-Disposition"]


def test_the_emergency_card_stands_alone(world, signed_in):
    a = world.a
    card = signed_in(a).get(f"/healthbook/{a.patient_id}/emergency-card")
    html = card.get_data(as_text=True)
    assert "<style>" in html and not re.search(r"<(link|script|img|iframe)\b", html)
    # Its inline styles (kept for the saved copy) are allowed by their hashes, nothing else inline.
    styles = re.findall(r"<style>(.*?)</style>", html, re.S)
    allowed = {"'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'" for s in styles}
    policy = dict(d.strip().split(" ", 1) for d in card.headers["Content-Security-Policy"].split(";"))
    assert len(styles) == 2 and set(policy["style-src"].split()) == {"'self'", *allowed} and "unsafe" not in policy["style-src"]
    for text in ("Thẻ cấp cứu", "Nhóm máu O, Rh(D) dương tính", "Amlodipin 5 mg", "Nguyễn Văn Hùng", "0912345678", "E11.9"):
        assert text in html


def test_english_with_lang_en(world, signed_in):
    a = world.a
    html = signed_in(a).get(f"/healthbook/{a.patient_id}/?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in html and "Overview" in html and "Blood group O, Rh(D) positive" in html


def test_patients_only(app, world, signed_in, store):
    anonymous = Browser(app.test_client()).get(f"/healthbook/{world.a.patient_id}/")
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/auth/login?next=/healthbook/")
    org = world.orgs[0]
    accounts.create_staff(store, OPS, username="bs.hoa", role="nurse", organization_id=org, display_name="Y tá Hoa", password=PASSWORD, now=now_us())
    nurse = Browser(app.test_client())
    nurse.login("bs.hoa")
    assert nurse.get(f"/healthbook/{world.a.patient_id}/").status_code == 403
    me = signed_in(world.a).get("/healthbook/")
    assert me.status_code == 302 and me.headers["Location"] == f"/healthbook/{world.a.patient_id}/"


def test_a_representative_switches_to_the_book_of_the_patient_they_represent(world, signed_in, store):
    a, b = world.a, world.b
    care.add_representative(store, OPS, context_of(store, b.patient_id).account_id, a.patient_id)
    guardian = signed_in(b)
    own = guardian.get(f"/healthbook/{b.patient_id}/").get_data(as_text=True)
    assert f'href="/healthbook/{a.patient_id}/"' in own and "người tôi đại diện" in own
    theirs = guardian.get(f"/healthbook/{a.patient_id}/visits").get_data(as_text=True)
    assert f"Hồ sơ của <strong>{a.name}</strong>" in theirs and "I10" in theirs
    path = f"/healthbook/{a.patient_id}/requests"
    sent = guardian.post(path, {"kind": "correction", "text": "Sửa số điện thoại của con tôi", "csrf_token": csrf_token(guardian, path)})
    assert sent.status_code == 302
    assert "Sửa số điện thoại của con tôi" in guardian.get(path).get_data(as_text=True)
