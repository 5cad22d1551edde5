"""A clinic's day in a real Chromium through gunicorn (issue 14): the desk registers and checks in
three patients (and a fourth, another facility's patient, on a signed paper consent), the queue
shows them in order; a nurse starts a visit and records vital signs only; the doctor records the
diagnosis into the same visit, signs it and corrects the diagnosis by a signed amendment; the next
patient is called, a visit recorded by mistake is cancelled; a patient's card is corrected; a turn
is cancelled. Every time on the pages is Vietnam time, also with the server's clock at 23:30 and
00:30 UTC. Screenshots go to artifacts/screenshots/day-*.png."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from e2e.conftest import start_gunicorn, stop_gunicorn
from ehr.services import accounts, resources, totp
from ehr.services.context import AccessContext
from ehr.services.policy import staff_context
from ehr.store.keys import now_us

OPS = AccessContext.operator("test")
PASSWORD = "đúng-mật-khẩu-9173"
VN = ZoneInfo("Asia/Ho_Chi_Minh")
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
PEOPLE = [("079190030001", "Nguyễn Thị Ngọc Ánh", "female"), ("079090030002", "Trần Văn Bình", "male"),
          ("079190030003", "Lê Thị Cúc", "female")]
GUEST = ("001085030004", "Phạm Văn Khách")  # registered at another facility


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"day-{name}.png"), full_page=True)


def _facility(store, name: str, suffix: str) -> str:
    org = resources.create(store, OPS, {"resourceType": "Organization", "name": name, "active": True}).version.logical_id
    for role, login, title in (("receptionist", "letan", "Lễ tân"), ("nurse", "dieuduong", "ĐD."), ("doctor", "bacsi", "BS.")):
        accounts.create_staff(store, OPS, username=f"{login}.{suffix}", role=role, organization_id=org,
                              display_name=f"{title} Hòa {suffix}", password=PASSWORD, now=now_us())
    return org


def sign_in(page, login: str) -> None:
    page.context.clear_cookies()
    page.goto("/auth/login?next=/clinic/")
    page.fill("#login", login)
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    if "/auth/totp/enrol" in page.url:  # doctors enrol a second factor on their first sign-in
        secret = re.search(r"[A-Z2-7]{32}", page.locator("code").first.inner_text()).group(0)
        page.fill("input[name=code]", totp.code_at(secret, now_us()))
        page.click("main button[type=submit]")
    page.wait_for_url("**/clinic/")


def _register(page, cccd: str, name: str, gender: str) -> None:
    page.goto("/clinic/patients/new")
    page.fill("#f-cccd", cccd)
    page.fill("#f-full_name", name)
    page.fill("#f-birth_date", "15/03/1990")
    page.select_option("#f-gender", gender)
    page.click("button[value=save]")
    page.wait_for_url(re.compile(r".*/clinic/patients/[0-9a-f-]{36}.*"))
    page.click("text=Tiếp nhận vào hàng chờ hôm nay")
    page.wait_for_url(re.compile(r".*/clinic/\?arrived=.*"))


def _rows(page, group: str) -> list[tuple[str, str]]:
    """(queue number, patient name) of a group of today's list, in order."""
    rows = page.locator(f".queue-{group} tbody tr")
    return [(rows.nth(i).locator(".queue-number").inner_text().strip(), rows.nth(i).locator("td a").first.inner_text())
            for i in range(rows.count())]


def _row(page, name: str):
    return page.locator("#queue-list tbody tr", has_text=name)


def _close_to_now(shown: str) -> bool:
    now = datetime.now(VN)
    return any((now - timedelta(minutes=m)).strftime("%H:%M") == shown for m in range(0, 5))


def test_a_clinic_day(page, site, store):
    org = _facility(store, "Phòng khám Đa khoa Hòa Bình", "a")
    other = _facility(store, "Bệnh viện Quận Một", "b")
    resources.create(store, staff_context("acct-desk-b", other, "receptionist"), {
        "resourceType": "Patient", "name": [{"text": GUEST[1]}], "gender": "male", "birthDate": "1985-01-01",
        "identifier": [{"system": store.systems.cccd, "value": GUEST[0]}]})
    del org

    # The desk: three registrations, each checked in; then another facility's patient on paper consent.
    sign_in(page, "letan.a")
    assert "Lễ tân Hòa a" in page.inner_text("header")
    for cccd, name, gender in PEOPLE:
        _register(page, cccd, name, gender)
        assert "Số thứ tự" in page.inner_text(".queue-announcement") or name in page.inner_text(".queue-announcement")
    page.goto("/clinic/patients")
    page.fill("#f-q", GUEST[0])
    page.press("#f-q", "Enter")
    page.wait_for_selector("#paper-consent")
    page.fill("#pc-proof", "Phiếu đồng ý số 04/2026, lưu tại quầy tiếp đón")
    page.click("#paper-consent button[type=submit]")
    page.wait_for_url(re.compile(r".*/clinic/\?arrived=.*"))
    waiting = _rows(page, "waiting")
    assert waiting == [("1", PEOPLE[0][1]), ("2", PEOPLE[1][1]), ("3", PEOPLE[2][1]), ("4", GUEST[1])]
    arrived = _row(page, PEOPLE[0][1]).locator("time").first.inner_text()
    assert _close_to_now(arrived), arrived  # Vietnam time, not the server's UTC
    assert f"({datetime.now(VN).strftime('%d/%m/%Y')})" in page.inner_text("h1")
    shot(page, "01-queue")

    # A turn is cancelled (the patient left), and a card is corrected at the desk.
    _row(page, PEOPLE[2][1]).locator("button", has_text="Hủy lượt").click()
    page.wait_for_load_state()
    assert _rows(page, "cancelled") == [("3", PEOPLE[2][1])]
    _row(page, PEOPLE[1][1]).locator("a").first.click()
    page.click("text=Sửa thông tin hành chính và thẻ BHYT")
    assert page.input_value("#f-full_name") == PEOPLE[1][1]
    page.fill("#f-phone", "0987 654 321")
    page.fill("#f-bhyt", "DN4017930030002")
    shot(page, "02-card-edit")
    page.click("button[value=save]")
    page.wait_for_selector("#patient-updated")

    # The nurse starts the first visit and records vital signs: the form offers nothing else.
    sign_in(page, "dieuduong.a")
    _row(page, PEOPLE[0][1]).locator("button", has_text="Bắt đầu khám").click()
    page.wait_for_url(re.compile(r".*/visits/new\?encounter=.*"))
    assert page.locator("#f-dx-0-code").count() == 0 and page.locator("#f-rx-0-drug").count() == 0
    page.fill("#f-reason", "Sốt, đau họng")
    for field, value in {"systolic": "118", "diastolic": "76", "heart_rate": "92", "temperature": "38.6", "spo2": "98"}.items():
        page.fill(f"#f-{field}", value)
    page.fill("#f-note", "Đo lúc tiếp nhận")
    shot(page, "03-nurse-vitals")
    page.click("main form button[type=submit]:has-text('Lưu lượt khám')")
    page.wait_for_url(re.compile(r".*/clinic/visits/[0-9a-f-]{36}$"))
    visit_url = page.url
    assert "ĐD. Hòa a" in page.inner_text("#visit-clinicians")

    # The doctor records the diagnosis into the same visit, signs it, then corrects the code.
    sign_in(page, "bacsi.a")
    _row(page, PEOPLE[0][1]).locator("a", has_text="Ghi kết quả khám").click()
    page.fill("#f-reason", "Sốt, đau họng")
    page.fill("#f-dx-0-code", "J03.9")
    page.fill("#f-rx-0-drug", "Paracetamol 500 mg")
    page.fill("#f-rx-0-frequency", "3")
    page.fill("#f-rx-0-days", "3")
    page.click("main form button[type=submit]:has-text('Lưu lượt khám')")
    page.wait_for_url(visit_url)
    assert page.inner_text("#visit-clinicians") == "ĐD. Hòa a, BS. Hòa a"
    page.click("text=Ký và kết thúc lượt khám")
    page.wait_for_selector("#signature")
    signed_at = re.search(r"\d\d/\d\d/\d{4} (\d\d:\d\d)", page.inner_text("#signature")).group(1)
    assert _close_to_now(signed_at), signed_at
    page.click("text=Sửa đổi sau khi ký")
    item = page.locator("section.amend-item", has_text="J03.9")
    item.locator("input[name=code]").fill("J02.9")
    item.locator("input[name=reason]").fill("Khám lại: viêm họng, không phải viêm amidan")
    shot(page, "04-amend")
    item.locator("button[value=recode]").click()
    page.wait_for_url(re.compile(r".*\?amended=1$"))
    body = page.inner_text("main")
    assert "J02.9" in body and "Khám lại: viêm họng" in body
    shot(page, "05-amended-visit")

    # The next patient is called; a visit recorded for them by mistake is cancelled.
    page.goto("/clinic/")
    page.click("text=Gọi bệnh nhân tiếp theo")
    page.wait_for_load_state()
    assert _row(page, PEOPLE[1][1]).locator("td").nth(2).inner_text() == "Đã gọi"
    _row(page, PEOPLE[1][1]).locator("button", has_text="Bắt đầu khám").click()
    page.wait_for_url(re.compile(r".*/visits/new\?encounter=.*"))
    page.fill("#f-reason", "Nhầm bệnh nhân")
    page.fill("#f-temperature", "37.0")
    page.click("main form button[type=submit]:has-text('Lưu lượt khám')")
    page.wait_for_url(re.compile(r".*/clinic/visits/[0-9a-f-]{36}$"))
    page.click("text=Hủy lượt khám (nhập nhầm)")
    page.wait_for_load_state()
    assert "đã bị hủy (nhập nhầm)" in page.inner_text("main")
    assert page.inner_text("#visit-status") == "Đã hủy (nhập nhầm)"

    # The fourth patient is seen and the visit finished from the list.
    page.goto("/clinic/")
    _row(page, GUEST[1]).locator("button", has_text="Bắt đầu khám").click()
    page.goto("/clinic/")
    _row(page, GUEST[1]).locator("button", has_text="Kết thúc").click()
    page.wait_for_load_state()
    finished = dict(_rows(page, "finished"))
    assert finished.get("4") == GUEST[1] and finished.get("1") == PEOPLE[0][1]
    counts = {g: page.locator(f".queue-{g} .queue-count").inner_text() for g in ("waiting", "in-progress", "finished", "cancelled")}
    assert counts["waiting"] == "(0)" and counts["finished"] == "(2)", counts
    shot(page, "06-end-of-day")


@pytest.mark.parametrize("utc, shown, day", [("2026-12-02T23:30:00+00:00", "06:3", "03/12/2026"),
                                             ("2026-12-03T00:30:00+00:00", "07:3", "03/12/2026")])
def test_the_queue_is_on_vietnams_date_and_time_around_utc_midnight(browser, app_config, store, tmp_path, utc, shown, day):
    suffix = "z" + utc[11:13]
    _facility(store, "Trạm y tế Phường " + suffix, suffix)
    proc, server = start_gunicorn(app_config, tmp_path / "gunicorn.log", workers=1, EHR_JOB_RUNNER="0", EHR_CLOCK_START=utc)
    context = browser.new_context(base_url=server.base, locale="vi-VN")
    try:
        page = context.new_page()
        sign_in(page, f"letan.{suffix}")
        _register(page, "079190031" + utc[11:13] + "9", "Đỗ Thị Nửa Đêm", "female")
        assert f"({day})" in page.inner_text("h1")
        arrived = _row(page, "Đỗ Thị Nửa Đêm").locator("time").first.inner_text()
        assert arrived.startswith(shown), arrived
        shot(page, f"07-midnight-{suffix}")
    finally:
        context.close()
        stop_gunicorn(proc)
