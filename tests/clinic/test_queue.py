"""Queue and worklist on the today page (issue 14): check-in at the desk gives queue numbers 1, 2,
3 shown in order, the four groups count their rows, the buttons move the visit, the list part
refreshes alone, and times are Vietnam's also when the UTC date is still yesterday's."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from clinic_helpers import post_form
from ehr.fhir import jsonio
from ehr.services import search
from ehr.services.context import AccessContext

OPS = AccessContext.operator("test")
PEOPLE = [("001190012345", "Nguyễn Thị Lan"), ("001090012346", "Trần Văn Minh"), ("001190012347", "Lê Thị Hoa")]
_ROW = re.compile(r'<tr id="q-([^"]+)" class="queue-row[^"]*">\s*<td class="queue-number">(\d*)</td>\s*<td><a [^>]*>([^<]+)</a>')


def _at(clock, iso: str) -> None:
    clock.now = int(datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp() * 1_000_000)


def _register(browser, cccd: str, name: str) -> str:
    response = post_form(browser, "/clinic/patients/new", {
        "action": "save", "cccd": cccd, "full_name": name, "birth_date": "01/01/1990", "gender": "female", "ethnicity": "01",
        "nationality": "VN"})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    return response.headers["Location"].split("/")[-1].split("?")[0]


def _check_in(browser, cccd: str):
    return post_form(browser, "/clinic/patients/check-in", {"cccd": cccd}, page="/clinic/patients")


def _rows(html: str) -> list[tuple[str, str, str]]:
    return _ROW.findall(html)


def _section(html: str, key: str) -> str:
    return html.split(f'id="h-{key}"', 1)[1].split("</section>", 1)[0]


def _encounters(store, pid: str) -> list[dict]:
    page = search.search(store, OPS, "Encounter", [("subject", f"Patient/{pid}")])
    return [jsonio.loads_stored(v.body or b"{}") for v, mode in page.entries if mode == "match"]


def _desk(signed_in, clock):
    _at(clock, "2026-12-03T02:00:00")  # 09:00 in Vietnam
    browser = signed_in("receptionist")
    pids = [_register(browser, cccd, name) for cccd, name in PEOPLE]
    for i, (cccd, _) in enumerate(PEOPLE):
        clock.advance(60)
        checked = _check_in(browser, cccd)
        assert checked.status_code == 302 and checked.headers["Location"] == f"/clinic/?arrived={pids[i]}"
    return browser, pids


def test_three_check_ins_get_numbers_in_order_and_the_last_is_announced(app, store, signed_in, clock):
    browser, pids = _desk(signed_in, clock)
    page = browser.get(f"/clinic/?arrived={pids[2]}").get_data(as_text=True)
    assert [(n, name) for _, n, name in _rows(page)] == [("1", PEOPLE[0][1]), ("2", PEOPLE[1][1]), ("3", PEOPLE[2][1])]
    assert "Đã tiếp nhận Lê Thị Hoa: số thứ tự 3." in page
    assert 'class="queue-row queue-new"' in page and "Đang chờ <span class=\"queue-count\">(3)</span>" in page
    text = re.sub(r"<[^>]+>", " ", page)
    assert "Chờ gọi" in text and not re.search(r"\b(arrived|triaged|in-progress|finished|cancelled)\b", text)  # no raw codes
    assert 'src="/static/queue-refresh.js"' in page and "<script>" not in page and "onclick" not in page
    # Checking the same patient in again gives no second place in the queue.
    again = _check_in(browser, PEOPLE[0][0])
    assert again.status_code == 302 and len(_encounters(store, pids[0])) == 1
    assert "số thứ tự 1." in browser.get(again.headers["Location"]).get_data(as_text=True)


def test_call_start_finish_cancel_from_the_page(app, store, signed_in, clock, staff):
    from clinic_helpers import sign_in

    desk, pids = _desk(signed_in, clock)
    clock.advance(5 * 60)
    called = post_form(desk, "/clinic/queue/call", {}, page="/clinic/")
    assert called.status_code == 302
    page = desk.get(called.headers["Location"]).get_data(as_text=True)
    assert "Đã gọi bệnh nhân số 1: Nguyễn Thị Lan." in page and "Đã gọi" in _section(page, "waiting")
    # A receptionist cannot start a visit (no start button, and the service says why).
    first = _rows(page)[0][0]
    assert f"/clinic/queue/{first}/start" not in page
    refused = post_form(desk, f"/clinic/queue/{first}/start", {}, page="/clinic/")
    assert refused.status_code == 403 and "lễ tân tiếp nhận, gọi bệnh nhân và hủy lượt" in refused.get_data(as_text=True)
    cancelled = post_form(desk, f"/clinic/queue/{_rows(page)[2][0]}/cancel", {}, page="/clinic/")
    assert "Đã hủy lượt số 3." in desk.get(cancelled.headers["Location"]).get_data(as_text=True)

    doctor = desk  # the same browser, now a doctor's session
    doctor.logout()
    sign_in(doctor, clock, staff("doctor"))
    page = doctor.get("/clinic/").get_data(as_text=True)
    version = re.search(rf'action="/clinic/queue/{first}/start">.*?name="version" value="(\d+)"', page, re.S).group(1)
    clock.advance(60)
    started = post_form(doctor, f"/clinic/queue/{first}/start", {"version": version, "patient": pids[0]}, page="/clinic/")
    assert started.status_code == 302
    assert started.headers["Location"] == f"/clinic/patients/{pids[0]}/visits/new?encounter={first}"
    stale = post_form(doctor, f"/clinic/queue/{first}/start", {"version": version}, page="/clinic/")  # a second desk, same page
    assert stale.status_code == 412 and "vừa được người khác cập nhật" in stale.get_data(as_text=True)
    clock.advance(10 * 60)
    doctor.get("/clinic/")  # the doctor is still there (staff sessions end after 15 idle minutes)
    clock.advance(10 * 60)
    finished = post_form(doctor, f"/clinic/queue/{first}/finish", {}, page="/clinic/")
    page = doctor.get(finished.headers["Location"]).get_data(as_text=True)
    assert "Đã kết thúc lượt khám số 1." in page
    counts = {k: int(re.search(rf'id="h-{k}">[^<]*<span class="queue-count">\((\d+)\)', page).group(1))
              for k in ("waiting", "in-progress", "finished", "cancelled")}
    assert counts == {"waiting": 1, "in-progress": 0, "finished": 1, "cancelled": 1}
    # Arrived 09:01, called 09:08, started 09:09: waited 8 minutes; finished 09:29.
    done = _section(page, "finished")
    assert "09:01" in done and "09:09" in done and "09:29" in done and "<td>8</td>" in done
    [encounter] = _encounters(store, pids[0])
    assert [h["status"] for h in encounter["statusHistory"]] == ["arrived", "triaged", "in-progress"]
    assert encounter["status"] == "finished" and encounter["period"]["end"] == "2026-12-03T09:29:00+07:00"
    # The second patient, still waiting since 09:02, has waited 27 minutes now.
    assert "<td>27</td>" in _section(page, "waiting")


def test_the_list_part_alone(app, store, signed_in, clock):
    browser, pids = _desk(signed_in, clock)
    part = browser.get(f"/clinic/?part=list&arrived={pids[1]}")
    html = part.get_data(as_text=True)
    assert part.status_code == 200 and html.lstrip().startswith('<div id="queue-list"')
    assert "<html" not in html and "Gọi bệnh nhân tiếp theo" not in html and "clinic-nav" not in html
    assert len(_rows(html)) == 3 and 'id="q-' in html and "queue-new" in html
    assert 'data-refresh="/clinic/?part=list&amp;arrived=' in html  # the swapped-in list refreshes the same way
    assert 'name="csrf_token"' in html  # its forms still post


def test_times_are_vietnams_with_the_clock_at_2330_utc(app, store, signed_in, clock):
    _at(clock, "2026-12-02T23:30:00")  # 06:30 on 3 December in Vietnam
    browser = signed_in("receptionist")
    pid = _register(browser, *PEOPLE[0])
    assert _check_in(browser, PEOPLE[0][0]).status_code == 302
    page = browser.get("/clinic/").get_data(as_text=True)
    assert "(03/12/2026)" in page and _rows(page)[0][1] == "1"
    assert '<time datetime="2026-12-03T06:30:00+07:00" title="03/12/2026 06:30">06:30</time>' in page
    [encounter] = _encounters(store, pid)
    assert encounter["period"]["start"] == "2026-12-03T06:30:00+07:00"
    assert encounter["identifier"][0]["system"].endswith("/2026-12-03")
    for _ in range(6):  # on to 07:30 in Vietnam, 00:30 UTC on the 3rd: the same day, the same queue
        clock.advance(600)
        browser.get("/clinic/?part=list")  # the desk is busy (staff sessions end after 15 idle minutes)
    pid2 = _register(browser, *PEOPLE[1])
    _check_in(browser, PEOPLE[1][0])
    assert [n for _, n, _ in _rows(browser.get("/clinic/").get_data(as_text=True))] == ["1", "2"]
    assert _encounters(store, pid2)[0]["identifier"][0]["value"] == "2"


def test_concurrent_check_ins_over_http_never_share_a_number(app, store, signed_in, clock):
    """Six desks (tabs of one signed-in session) check six patients in at the same moment."""
    import threading

    from auth.auth_helpers import COOKIE, Browser

    _at(clock, "2026-12-03T02:00:00")
    first = signed_in("receptionist")
    people = [(f"0011900123{i:02d}", f"Song Song {i}") for i in range(6)]
    for cccd, name in people:
        _register(first, cccd, name)
    desks, tokens = [], []
    for _ in people:
        desk = Browser(app.test_client())
        desk.client.set_cookie(COOKIE, first.session_cookie() or "", domain="localhost", secure=True, path="/")
        tokens.append(re.search(r'name="csrf_token"[^>]*value="([^"]+)"', desk.get("/clinic/patients").get_data(as_text=True)).group(1))
        desks.append(desk)
    barrier = threading.Barrier(len(desks))
    answers: list[int] = []

    def check_in(desk, cccd, token):
        barrier.wait()
        answers.append(desk.post("/clinic/patients/check-in", {"cccd": cccd, "csrf_token": token}).status_code)

    threads = [threading.Thread(target=check_in, args=(d, cccd, t)) for d, (cccd, _), t in zip(desks, people, tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [302] * len(people)
    numbers = [n for _, n, _ in _rows(first.get("/clinic/").get_data(as_text=True))]
    assert sorted(numbers, key=int) == [str(i) for i in range(1, len(people) + 1)]
