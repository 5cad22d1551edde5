"""A form sent after its session expired is kept, encrypted, and comes back after sign-in (issue 14).

Real database, real crypto, the movable clock of the login tests: a doctor opens the visit form,
the staff idle limit passes, "Lưu" answers a 303 to the login page with the expiry notice and
`next` (not the bare 400 of the CSRF check), and signing in again reopens the form as typed.
"""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import template_rendered
from sqlalchemy import func, insert, select

from auth_helpers import OPS, Browser, Clock, register_patient
from db_snapshot import snapshot
from ehr.services import care, search, totp
from ehr.services import drafts as store_drafts
from ehr.store.schema import form_drafts
from store.test_canary_scan import database_bytes, encodings

CANARY = "Họng đỏ Canarỹ-Zx81q amidan sưng"
NOTICE = "Đã khôi phục nội dung bạn nhập trước khi phiên hết hạn."
EXPIRED = "Phiên làm việc đã hết hạn. Vui lòng đăng nhập lại."
IDLE = 16 * 60  # past the staff idle limit (EHR_STAFF_IDLE_MINUTES, 15)
_SECRET = re.compile(r"<code>([A-Z2-7]{32})</code>")
_CSRF = re.compile(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"')
_NEXT = re.compile(r'<input[^>]*name="next"[^>]*value="([^"]*)"')
_VISIT_TOKEN = re.compile(r'name="token" value="([^"]+)"')


@contextmanager
def rendered(app: Any) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    seen: list[tuple[str, dict[str, Any]]] = []

    def record(sender: Any, template: Any, context: dict[str, Any], **extra: Any) -> None:
        seen.append((template.name, dict(context)))

    template_rendered.connect(record, app)
    try:
        yield seen
    finally:
        template_rendered.disconnect(record, app)


class Doctor:
    """A doctor of the facility with a second factor, who can sign in again later."""

    def __init__(self, browser: Browser, clock: Clock, username: str) -> None:
        self.browser, self.clock, self.username = browser, clock, username
        assert browser.login(username).headers["Location"] == "/auth/totp/enrol"
        self.secret = _SECRET.search(browser.get("/auth/totp/enrol").get_data(as_text=True)).group(1)  # type: ignore[union-attr]
        assert browser.code(totp.code_at(self.secret, clock()), "/auth/totp/enrol").status_code == 302

    def sign_in_from(self, login_page: str) -> str:
        """Sign in on the login page the expiry led to; where the browser is sent afterwards."""
        page = self.browser.get(login_page).get_data(as_text=True)
        found = _NEXT.search(page)
        data = {"login": self.username, "password": "đúng-mật-khẩu-9173", "next": found.group(1) if found else "",
                "csrf_token": _CSRF.search(page).group(1)}  # type: ignore[union-attr]
        assert self.browser.post("/auth/login", data).headers["Location"] == "/auth/totp"
        self.clock.advance(31)  # a TOTP code is accepted once: the next step's
        answer = self.browser.code(totp.code_at(self.secret, self.clock()))
        assert answer.status_code == 302
        return str(answer.headers["Location"])


@pytest.fixture
def clinic(store: Any, facility: str) -> str:
    """A patient in the facility's care."""
    patient_id = register_patient(store)
    care.record(store, OPS, patient_id, facility)
    return patient_id


@pytest.fixture
def doctor(browser: Browser, clock: Clock, staff: Callable[..., str]) -> Doctor:
    return Doctor(browser, clock, staff("doctor"))


def _form(page: str, **fields: str) -> dict[str, str]:
    return {"csrf_token": _CSRF.search(page).group(1), "token": _VISIT_TOKEN.search(page).group(1),  # type: ignore[union-attr]
            "class_code": "AMB", "reason": "Sốt, ho ba ngày", "temperature": "38.5", "dx-0-code": "J06.9", "note": CANARY, **fields}


def _drafts(store: Any) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(form_drafts)).scalar_one())


def _encounters(store: Any, patient_id: str) -> int:
    return len(search.search(store, OPS, "Encounter", [("patient", patient_id)]).entries)


def _expire_mid_form(doctor: Doctor, path: str, **fields: str) -> tuple[Any, dict[str, str]]:
    """Open the form, let the session time out, send the form: (the answer, what was sent)."""
    page = doctor.browser.get(path).get_data(as_text=True)
    form = _form(page, **fields)
    doctor.clock.advance(IDLE)
    return doctor.browser.post(path, form), form


def test_a_session_expiring_mid_form_restores_the_form_after_sign_in(app, store, clinic, doctor, clock, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    path = f"/clinic/patients/{clinic}/visits/new"
    page = doctor.browser.get(path).get_data(as_text=True)
    form = _form(page)
    clock.advance(IDLE)
    before, _ = snapshot(store)

    answer = doctor.browser.post(path, form)

    assert answer.status_code == 303  # not the bare "400 Bad Request" of the CSRF check
    target = urlsplit(answer.headers["Location"])
    assert target.path == "/auth/login"
    assert parse_qs(target.query) == {"m": ["session-expired"], "next": [path]}
    after, _ = snapshot(store)
    changed = {name: (before[name], after[name]) for name in before if before[name] != after[name]}
    assert changed == {"form_drafts": (0, 1), "sessions": (1, 0)}  # the draft kept; nothing else written
    assert _encounters(store, clinic) == 0
    raw = database_bytes(store, tmp_path)
    assert [form for form in encodings(CANARY) if form in raw] == []
    assert CANARY.casefold() not in "\n".join(r.getMessage() for r in caplog.records).casefold()

    login_page = doctor.browser.get(answer.headers["Location"]).get_data(as_text=True)
    assert EXPIRED in login_page and f'value="{path}"' in login_page  # says why, and leads back
    assert doctor.sign_in_from(answer.headers["Location"]) == path

    with rendered(app) as seen:
        restored = doctor.browser.get(path)
    text = restored.get_data(as_text=True)
    assert restored.status_code == 200
    assert CANARY in text and 'value="Sốt, ho ba ngày"' in text and 'value="38.5"' in text and 'value="J06.9"' in text
    assert f'name="token" value="{form["token"]}"' in text  # the same submission token: sending it stays idempotent
    assert [context["form_draft_notice"] for name, context in seen if name == "clinic/visit_form.html"] == [NOTICE]
    assert _drafts(store) == 0  # restored once, then gone

    with rendered(app) as seen:
        again = doctor.browser.get(path).get_data(as_text=True)
    assert CANARY not in again and f'value="{form["token"]}"' not in again
    assert [context["form_draft_notice"] for name, context in seen if name == "clinic/visit_form.html"] == [None]


def test_another_account_gets_nothing(app, store, clinic, doctor, clock, staff):
    path = f"/clinic/patients/{clinic}/visits/new"
    answer, _ = _expire_mid_form(doctor, path)
    assert answer.status_code == 303 and _drafts(store) == 1

    other = Doctor(Browser(app.test_client()), clock, staff("doctor"))
    with rendered(app) as seen:
        page = other.browser.get(path).get_data(as_text=True)
    assert CANARY not in page
    assert [context["form_draft_notice"] for name, context in seen if name == "clinic/visit_form.html"] == [None]
    assert _drafts(store) == 1  # still the first doctor's

    # The same browser, another account signing in through the expiry's link: nothing either.
    someone = Doctor(doctor.browser, clock, staff("doctor"))
    assert CANARY not in someone.browser.get(path).get_data(as_text=True)
    assert _drafts(store) == 1
    assert doctor.sign_in_from(answer.headers["Location"]) == path
    assert CANARY in doctor.browser.get(path).get_data(as_text=True)


def test_an_expired_draft_is_not_restored(store, clinic, doctor, clock):
    path = f"/clinic/patients/{clinic}/visits/new"
    answer, _ = _expire_mid_form(doctor, path)
    assert answer.status_code == 303 and _drafts(store) == 1
    clock.advance(24 * 3600 + 1)  # EHR_FORM_DRAFT_HOURS
    assert doctor.sign_in_from(answer.headers["Location"]) == path
    page = doctor.browser.get(path).get_data(as_text=True)
    assert CANARY not in page and "Sốt, ho ba ngày" not in page
    assert _drafts(store) == 0


def test_logging_out_discards_the_drafts(store, clinic, doctor, clock):
    path = f"/clinic/patients/{clinic}/visits/new"
    answer, _ = _expire_mid_form(doctor, path)
    assert answer.status_code == 303 and _drafts(store) == 1
    assert doctor.sign_in_from("/auth/login") == "/"
    doctor.browser.logout()
    assert _drafts(store) == 0
    assert doctor.sign_in_from(answer.headers["Location"]) == path
    assert CANARY not in doctor.browser.get(path).get_data(as_text=True)


def test_the_registration_form_comes_back_too(store, doctor):
    path = "/clinic/patients/new"
    page = doctor.browser.get(path).get_data(as_text=True)
    form = {"csrf_token": _CSRF.search(page).group(1), "action": "save", "cccd": "001190054321",  # type: ignore[union-attr]
            "full_name": "Lê Thị Canarỹ Hoa", "birth_date": "02/03/1985", "gender": "female", "phone": "0912345678"}
    doctor.clock.advance(IDLE)
    answer = doctor.browser.post(path, form)
    assert answer.status_code == 303
    assert parse_qs(urlsplit(answer.headers["Location"]).query)["next"] == [path]
    assert doctor.sign_in_from(answer.headers["Location"]) == path
    text = doctor.browser.get(path).get_data(as_text=True)
    assert 'value="Lê Thị Canarỹ Hoa"' in text and 'value="001190054321"' in text and 'value="02/03/1985"' in text


def test_without_the_expired_sessions_own_token_the_csrf_answer_is_unchanged(app, store, clinic, doctor, clock):
    path = f"/clinic/patients/{clinic}/visits/new"
    page = doctor.browser.get(path).get_data(as_text=True)
    clock.advance(IDLE)
    # A token the expired session never issued (another visitor's, e.g. a planted form): the 400, no draft.
    stranger = Browser(app.test_client())
    foreign = stranger.token()
    refused = doctor.browser.post(path, {**_form(page), "csrf_token": foreign})
    assert refused.status_code == 400 and _drafts(store) == 0
    # The expired row is gone now: the same form again has no recognizable session.
    assert doctor.browser.post(path, _form(page)).status_code == 400
    # No cookie at all.
    assert Browser(app.test_client()).post(path, _form(page)).status_code == 400
    assert _drafts(store) == 0 and _encounters(store, clinic) == 0


def test_a_post_only_action_goes_to_the_login_page_and_keeps_nothing(store, clinic, doctor, clock):
    page = doctor.browser.get(f"/clinic/patients/{clinic}").get_data(as_text=True)
    clock.advance(IDLE)
    answer = doctor.browser.post(f"/clinic/patients/{clinic}/break-glass",
                                 {"csrf_token": _CSRF.search(page).group(1), "reason": CANARY, "minutes": "30"})  # type: ignore[union-attr]
    assert answer.status_code == 303 and answer.headers["Location"] == "/auth/login?m=session-expired"
    assert _drafts(store) == 0


def test_no_password_or_token_is_kept(store, clinic, doctor):
    path = f"/clinic/patients/{clinic}/visits/new"
    answer, form = _expire_mid_form(doctor, path, password="Canary-mật-khẩu-Qq9", new_password="Canary-mới-Rr2")
    assert answer.status_code == 303
    with store.engine.connect() as conn:
        account_id = conn.execute(select(form_drafts.c.account_id)).scalar_one()
    kept = store_drafts.take(store, account_id, path, now=doctor.clock())
    assert kept is not None and kept["note"] == CANARY and kept["token"] == form["token"]
    assert "csrf_token" not in kept and "password" not in kept and "new_password" not in kept


def test_a_draft_moved_to_another_account_does_not_open(store, clock):
    path = "/clinic/patients/x/visits/new"
    assert store_drafts.keep(store, "account-a", path, {"note": CANARY}, now=clock(), hours=24)
    with store.engine.begin() as conn:
        row = dict(conn.execute(select(form_drafts)).mappings().one())
        conn.execute(insert(form_drafts).values({**row, "account_id": "account-b",
                                                 "path_hash": store.blind.token("form-draft.path", f"account-b\x1f{path}")}))
    assert store_drafts.take(store, "account-b", path, now=clock()) is None  # bound to its account: no plaintext
    assert store_drafts.take(store, "account-a", "/clinic/patients/y/visits/new", now=clock()) is None
    assert store_drafts.take(store, "account-a", path, now=clock()) == {"note": CANARY}
    assert store_drafts.take(store, "account-a", path, now=clock()) is None  # once


def test_the_restored_form_sent_twice_records_one_visit(store, clinic, doctor):
    path = f"/clinic/patients/{clinic}/visits/new"
    answer, form = _expire_mid_form(doctor, path)
    assert doctor.sign_in_from(answer.headers["Location"]) == path
    restored = doctor.browser.get(path).get_data(as_text=True)
    resubmit = {**_form(restored), "note": CANARY}
    assert resubmit["token"] == form["token"]  # the submission token came back with the fields
    saved = doctor.browser.post(path, resubmit)
    assert saved.status_code == 302 and saved.headers["Location"].startswith("/clinic/visits/")
    assert doctor.browser.post(path, resubmit).headers["Location"] == saved.headers["Location"]  # idempotent
    assert _encounters(store, clinic) == 1
