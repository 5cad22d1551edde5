"""Check-in by a typed CCCD (issue 20, finding 5): another facility's patient only with consent or
break-glass, one answer for registered and unregistered numbers, care that expires, the patient
sees and ends it."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from access_helpers import OPS
from ehr.fhir.outcomes import FhirError
from ehr.services import accounts, care, healthbook_privacy, resources
from ehr.services.policy import patient_context, staff_context
from ehr.store.keys import now_us
from ehr.store.schema import care_relationships
from world import CCCD, _patient, consent

UNREGISTERED = "036095000333"


@pytest.fixture
def scene(store):
    for org in ("org-a", "org-b"):
        resources.update(store, OPS, "Organization", org, {"resourceType": "Organization", "id": org, "name": f"Cơ sở {org}"})
    at_a = staff_context("acct-rec-a", "org-a", "receptionist")
    pid = resources.create(store, at_a, _patient(store, "A", "Trần Thị Mai", "1990-03-04", "female")).version.logical_id
    return pid, at_a, staff_context("acct-doc-b", "org-b", "doctor"), patient_context("acct-pa", pid)


def _refusal(store, ctx, number):
    with pytest.raises(FhirError) as caught:
        care.check_in(store, ctx, number)
    return caught.value.status, [i.diagnostics for i in caught.value.issues]


def _reads(store, ctx, pid) -> bool:
    try:
        resources.read(store, ctx, "Patient", pid)
    except FhirError:
        return False
    return True


def test_own_patient_checks_in_another_facilitys_gets_the_unregistered_answer(store, scene):
    pid, at_a, doc_b, patient = scene
    assert care.check_in(store, at_a, CCCD["A"]) == pid
    assert _refusal(store, doc_b, CCCD["A"]) == _refusal(store, doc_b, UNREGISTERED)
    assert _refusal(store, doc_b, CCCD["A"])[0] == 404 and not _reads(store, doc_b, pid)
    log = healthbook_privacy.access_log(store, patient, pid).entries
    assert any(e.access.action == "care.check-in" and e.access.denied and e.access.organization == "org-b" for e in log)


def test_consent_or_break_glass_opens_check_in(store, scene):
    pid, _, doc_b, patient = scene
    resources.create(store, patient, consent(pid, ["org-b"]))
    assert care.check_in(store, doc_b, CCCD["A"]) == pid
    nurse_c = staff_context("acct-nurse-c", "org-c", "nurse")
    with pytest.raises(FhirError):
        care.check_in(store, nurse_c, CCCD["A"])
    care.break_glass_by_national_id(store, nurse_c, CCCD["A"], "bất tỉnh sau tai nạn giao thông", 30)
    assert care.check_in(store, nurse_c, CCCD["A"]) == pid
    sources = {r.organization_id: r.source for r in care.relationships(store, pid)}
    assert sources == {"org-a": "registered", "org-b": "consent", "org-c": "break-glass"}
    # Both stand out in the patient's access log: a consented check-in and an emergency one.
    check_ins = {e.access.organization: e.access for e in healthbook_privacy.access_log(store, patient, pid).entries
                 if e.access.action == "care.check-in" and not e.access.denied}
    assert check_ins["org-b"].under_consent and check_ins["org-c"].emergency and not check_ins["org-b"].emergency


def test_break_glass_by_an_unknown_number_answers_like_a_refused_check_in(store, scene):
    _, _, doc_b, _ = scene
    with pytest.raises(FhirError) as caught:
        care.break_glass_by_national_id(store, doc_b, UNREGISTERED, "bất tỉnh sau tai nạn giao thông", 30)
    assert caught.value.status == 404 and caught.value.issues[0].diagnostics == care.NOT_OPENED


def test_care_expires_and_a_visit_renews_it(store, scene):
    pid, at_a, _, _ = scene
    doctor_a = staff_context("acct-doc-a", "org-a", "doctor")
    soon = now_us() + 60_000_000
    with store.engine.begin() as conn:
        conn.execute(update(care_relationships).values(expires_at=soon))
    resources.create(store, doctor_a, {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"},
                                       "subject": {"reference": f"Patient/{pid}"}})
    [renewed] = care.relationships(store, pid)
    assert renewed.until >= now_us() + (store.care_days - 1) * 86_400_000_000
    with store.engine.begin() as conn:
        conn.execute(update(care_relationships).values(expires_at=now_us() - 1))
    assert not _reads(store, doctor_a, pid) and care.relationships(store, pid) == []
    assert care.check_in(store, at_a, CCCD["A"]) == pid  # the facility's own patient is checked in again
    assert _reads(store, doctor_a, pid)


def test_the_patient_ends_a_care_relationship(store, scene):
    pid, at_a, _, patient = scene
    [caring] = healthbook_privacy.caring(store, patient, pid)
    assert caring.organization == "Cơ sở org-a"
    healthbook_privacy.end_care(store, patient, pid, "org-a")
    assert not _reads(store, at_a, pid) and healthbook_privacy.caring(store, patient, pid) == []
    log = healthbook_privacy.access_log(store, patient, pid, include_own=True).entries
    assert any(e.access.action == "care.end" for e in log)
    with pytest.raises(FhirError) as caught:
        care.end(store, at_a, pid, "org-a")  # staff cannot end (or fake an end of) a relationship
    assert caught.value.status == 403


def test_a_signed_paper_consent_opens_check_in_and_the_patient_sees_and_withdraws_it(store, scene):
    pid, _, doc_b, patient = scene
    with pytest.raises(FhirError) as short:
        care.check_in_with_paper_consent(store, doc_b, CCCD["A"], "x", 30)
    assert short.value.status == 400 and not _reads(store, doc_b, pid)
    with pytest.raises(FhirError) as unknown:
        care.check_in_with_paper_consent(store, doc_b, UNREGISTERED, "Phiếu đồng ý số 17/2026, lưu tại quầy", 30)
    assert unknown.value.status == 404
    assert care.check_in_with_paper_consent(store, doc_b, CCCD["A"], "Phiếu đồng ý số 17/2026, lưu tại quầy", 30) == pid
    assert _reads(store, doc_b, pid)
    for hand_out in (accounts.reset_patient_account, accounts.create_patient_account):  # seeing is not holding the record
        with pytest.raises(FhirError) as refused:
            hand_out(store, doc_b, pid, now=now_us())
        assert refused.value.status == 403
    log = healthbook_privacy.access_log(store, patient, pid).entries
    assert any(e.access.action == "care.check-in" and e.access.under_consent and e.access.organization == "org-b" for e in log)
    shared = healthbook_privacy.grants(store, patient, pid)
    assert [s.grant.organizations for s in shared] == [("org-b",)]
    healthbook_privacy.revoke(store, patient, pid, shared[0].grant.id)
    healthbook_privacy.end_care(store, patient, pid, "org-b")
    assert not _reads(store, doc_b, pid)
