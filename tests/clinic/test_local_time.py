"""One clock, one time zone (issue 14): clinic pages show Vietnam time and "today" is Vietnam's
date, also in the hours when the UTC date is still yesterday's."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from clinic_helpers import post_form


def _at(clock, iso: str) -> None:
    clock.now = int(datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp() * 1_000_000)


@pytest.mark.parametrize(("utc", "shown"), [("2026-12-02T23:30:00", "03/12/2026 06:30"), ("2026-12-03T00:30:00", "03/12/2026 07:30")])
def test_a_visit_shows_vietnam_time_and_is_on_vietnams_today(signed_in, clock, utc, shown):
    _at(clock, utc)
    browser = signed_in("doctor")
    registered = post_form(browser, "/clinic/patients/new", {
        "action": "save", "cccd": "001190012345", "full_name": "Nguyễn Thị Lan", "birth_date": "01/01/1990",
        "gender": "female", "ethnicity": "01", "nationality": "VN"})
    pid = registered.headers["Location"].split("/")[-1].split("?")[0]
    path = f"/clinic/patients/{pid}/visits/new"
    token = re.search(r'name="token" value="([^"]+)"', browser.get(path).get_data(as_text=True)).group(1)
    saved = post_form(browser, path, {"token": token, "reason": "Ho, sốt"})
    assert saved.status_code == 302, saved.get_data(as_text=True)[:2000]
    visit = browser.get(saved.headers["Location"]).get_data(as_text=True)
    assert shown in visit
    today = browser.get("/clinic/").get_data(as_text=True)
    assert "Nguyễn Thị Lan" in today and shown in today  # on today's list although the UTC date differs (first case)
    chart = browser.get(f"/clinic/patients/{pid}").get_data(as_text=True)
    assert shown in chart
