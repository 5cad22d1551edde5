"""Demo data: shared facilities first, then one transaction per synthetic patient; and, in
development only, demo logins for both front doors.

The demo logins (`demo_logins`) are a demo facility with a receptionist, a nurse, a doctor and a
facility admin, and the first synthetic patient with an activated health-book account and a
visit recorded and signed the clinic's way by the demo doctor. Passwords are generated at each
call (the previous ones stop working); the doctor and the admin, who always need a second factor,
get an enrolled TOTP secret to print (a code is `python3 dev.py totp SECRET`): the sign-in path is
the production one, nothing is switched off for demo accounts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Callable

from ehr.crypto.signing_keys import FacilityKeys
from ehr.fhir import visit as v
from ehr.fhir.healthbook import VN
from ehr.services import accounts, bundles, care, catalogue, indexing, logins, passwords, practitioners, resources, signing, totp, visits
from ehr.services.context import AccessContext
from ehr.store import access, index
from ehr.store.access import INTERNAL
from ehr.store.keys import now_us
from ehr.store.runtime import Store
from ehr.synthetic.generator import Generator, Scale

DEMO_FACILITY_ID = "phong-kham-demo"
DEMO_FACILITY_NAME = "Phòng khám Đa khoa Demo (dữ liệu thử)"
# (role, login name, display name): one of each staff role.
DEMO_STAFF = (
    ("receptionist", "letan.demo", "Lê Thị Tân"),
    ("nurse", "dieuduong.demo", "Phạm Thu Dung"),
    ("doctor", "bacsi.demo", "Nguyễn Văn Minh"),
    ("admin", "quantri.demo", "Trần Quốc Trị"),
)


class DemoRefused(RuntimeError):
    """Demo logins are for development: production mode never gets accounts with printed passwords."""


@dataclass
class DemoReport:
    patients: int
    resources: int


@dataclass(frozen=True)
class DemoLogin:
    door: str  # "clinic" or "healthbook"
    role: str  # doctor, nurse, receptionist, admin, patient
    login: str  # username, or the patient's CCCD
    password: str
    totp_secret: str | None = None  # the doctor's and the admin's enrolled second factor


def has_patients(store: Store) -> bool:
    with store.reading(INTERNAL) as uow:
        return bool(index.live_of_type(uow, "Patient", None, None, 1))


def load(store: Store, ctx: AccessContext, patients: int, seed: int, progress: Callable[[int], None] | None = None) -> DemoReport:
    generator = Generator(seed=seed)
    written = 0
    for resource in generator.facility_resources():
        resources.update(store, ctx, resource["resourceType"], resource["id"], resource)
        written += 1
    for bundle in generator.patients(patients, scale=Scale(coverages=1)):
        written += len(bundles.ingest_transaction(store, ctx, bundle))
        if progress:
            progress(1)
    catalogue.load_samples(store)  # the synthetic drug, service and lab-test lists (idempotent)
    return DemoReport(patients, written)


def logins_present(store: Store) -> bool:
    """Do all the demo staff accounts exist (the logins printed before still apply)?"""
    with store.reading(INTERNAL) as uow:
        return all(access.account_by(uow, kind="staff", username=name) is not None for _, name, _ in DEMO_STAFF)


def demo_logins(store: Store, ctx: AccessContext, keys: FacilityKeys, *, env: str, seed: int = 1) -> list[DemoLogin]:
    """Make (or renew) the demo facility, its four staff accounts and the demo patient's account;
    the logins to print. Refused unless `env` is "development"."""
    if env != "development":
        raise DemoRefused("demo logins are created in development only (EHR_ENV=development)")
    _facility(store, ctx)
    out = [_staff(store, ctx, role, name, shown) for role, name, shown in DEMO_STAFF]
    doctor = accounts.get(store, _account_id(store, "bacsi.demo"))
    assert doctor is not None
    out.append(_patient(store, ctx, keys, doctor.context(), seed))
    return out


def _facility(store: Store, ctx: AccessContext) -> None:
    doc = {"resourceType": "Organization", "id": DEMO_FACILITY_ID, "active": True, "name": DEMO_FACILITY_NAME,
           "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov"}]}]}
    resources.update(store, ctx, "Organization", DEMO_FACILITY_ID, doc)


def _account_id(store: Store, username: str) -> str:
    with store.reading(INTERNAL) as uow:
        row = access.account_by(uow, kind="staff", username=username)
    assert row is not None
    return str(row["account_id"])


def _staff(store: Store, ctx: AccessContext, role: str, username: str, shown: str) -> DemoLogin:
    password = accounts.new_temporary_password(username)
    with store.reading(INTERNAL) as uow:
        row = access.account_by(uow, kind="staff", username=username)
    if row is None:
        account_id, _ = accounts.create_staff(store, ctx, username=username, role=role, organization_id=DEMO_FACILITY_ID,
                                              display_name=shown, password=password, now=now_us())
    else:
        account_id = row["account_id"]
        with store.writing(INTERNAL) as uow:  # renewed: the previous demo password stops working
            access.update_account(uow, account_id, password_hash=passwords.hash_password(password), must_change_password=False,
                                  active=True)
            access.sessions_of_account_delete(uow, account_id)
    secret = None
    if role in accounts.TOTP_REQUIRED_ROLES:
        secret = totp.new_secret()
        with store.writing(INTERNAL) as uow:
            accounts.enrol_totp(uow, store, account_id, secret, 0)
    return DemoLogin("clinic", role, username, password, secret)


def _patient(store: Store, ctx: AccessContext, keys: FacilityKeys, doctor: AccessContext, seed: int) -> DemoLogin:
    """The first synthetic patient (loaded already, or now), in the demo facility's care, with a
    visit recorded and signed by the demo doctor and an activated health-book account."""
    generator = Generator(seed=seed)
    bundle = generator.patient_bundle(0, Scale(coverages=1))
    cccd = str(bundle["entry"][0]["resource"]["identifier"][0]["value"])
    with store.reading(INTERNAL) as uow:
        holders = index.token_holders(uow, "Patient", indexing.NATIONAL_ID, indexing.national_id_token(store, cccd))
    if holders:
        patient_id = holders[0]
    else:
        for resource in generator.facility_resources():  # what the patient's record references
            resources.update(store, ctx, resource["resourceType"], resource["id"], resource)
        patient_id = str(bundles.ingest_transaction(store, ctx, bundle)[0].location).split("/")[1]
    care.record(store, ctx, patient_id, DEMO_FACILITY_ID)
    _visit(store, keys, doctor, patient_id)
    code = accounts.reset_patient_account(store, ctx, patient_id, now=now_us())
    password = accounts.new_temporary_password()
    outcome = logins.activate(store, cccd, code, password, limits=logins.Limits(), now=now_us(), caller=logins.Caller())
    assert outcome.status == "ok", outcome.status
    return DemoLogin("healthbook", "patient", cccd, password)


def _visit(store: Store, keys: FacilityKeys, doctor: AccessContext, patient_id: str) -> str:
    """A check-up recorded the clinic's way (one transaction) and signed by the demo doctor."""
    clinician = practitioners.for_account(store, doctor)
    author = v.Author(practitioner_id=clinician.practitioner_id, role_id=clinician.role_id, name=clinician.name) if clinician else None
    started = datetime.now(VN) - timedelta(hours=1)
    encounter = visits.record(store, doctor, v.Visit(
        patient_id=patient_id, organization_id=DEMO_FACILITY_ID, token=str(uuid.uuid4()), started=started, class_code="AMB",
        class_display="Ngoại trú", reason="Khám sức khỏe định kỳ, theo dõi huyết áp", author=author,
        vitals={"systolic": Decimal(132), "diastolic": Decimal(84), "heart_rate": Decimal(76), "height": Decimal(162),
                "weight": Decimal(60)},
        diagnoses=[v.Diagnosis(code="I10", display="Tăng huyết áp vô căn (nguyên phát)")],
        prescriptions=[v.Prescription(drug="Amlodipin 5 mg", dose_value=Decimal(1), dose_unit="viên", route="26643006",
                                      route_display="Đường uống", frequency=1, duration_days=30, quantity=Decimal(30),
                                      instructions="Uống buổi sáng sau ăn")],
        note="Huyết áp hơi cao, chưa có biến chứng.", advice="Ăn nhạt, đi bộ 30 phút mỗi ngày.\nĐo huyết áp mỗi sáng.",
        revisit=date.today() + timedelta(days=30),
    ))
    signing.sign_visit(store, doctor, keys, encounter)
    return encounter
