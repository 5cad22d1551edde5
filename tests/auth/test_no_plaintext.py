"""No password, TOTP secret, activation code, staff name or citizen ID in plaintext: not in the
database (raw file bytes, every encoding of the canary scan) and not in the logs."""

from __future__ import annotations

import base64
import logging
import re

from auth_helpers import OPS, account_row, register_patient
from ehr.services import accounts, totp
from store.test_canary_scan import database_bytes, encodings

STAFF_PASSWORD = "Canary-mật-khẩu-Zq7x"
PATIENT_PASSWORD = "Canary-bệnh-nhân-Wm3k"
STAFF_NAME = "Bác sĩ Canarỹ Đặng"
CCCD = "079188054321"


def test_secrets_and_identifiers_stay_out_of_database_and_logs(browser, store, facility, clock, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    accounts.create_staff(store, OPS, username="canary.doctor", role="doctor", organization_id=facility, display_name=STAFF_NAME,
                          password=STAFF_PASSWORD, now=clock())
    browser.login("canary.doctor", STAFF_PASSWORD)
    secret = re.search(r"<code>([A-Z2-7]{32})</code>", browser.get("/auth/totp/enrol").get_data(as_text=True)).group(1)
    assert browser.code(totp.code_at(secret, clock()), "/auth/totp/enrol").status_code == 302
    browser.logout()
    browser.login("canary.doctor", "Canary-wrong-guess-1")

    patient_id = register_patient(store, CCCD, "Người Bệnh Canary")
    code = accounts.create_patient_account(store, OPS, patient_id, now=clock())
    browser.submit("/auth/activate", {"login": CCCD, "code": code, "password": PATIENT_PASSWORD, "confirm": PATIENT_PASSWORD})
    browser.login(CCCD, PATIENT_PASSWORD)
    browser.login(CCCD, "Canary-wrong-guess-2")
    assert accounts.display_name(store, account_row(store, username="canary.doctor")["account_id"]) == STAFF_NAME

    canaries = {"staff password": STAFF_PASSWORD, "patient password": PATIENT_PASSWORD, "wrong guess": "Canary-wrong-guess",
                "totp secret": secret, "activation code": code, "activation code (typed)": code.replace("-", ""),
                "staff name": STAFF_NAME, "cccd": CCCD}
    raw = database_bytes(store, tmp_path)
    hits = {name: form for name, value in canaries.items() for form in encodings(value) if form in raw}
    assert hits == {}
    assert base64.b32decode(secret) not in raw  # nor the secret's raw bytes
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert logged  # something was logged (request lines, audit), none of it secret
    assert {name for name, value in canaries.items() if value.casefold() in logged.casefold()} == set()
