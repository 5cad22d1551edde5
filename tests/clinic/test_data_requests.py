"""Patients' correction and deletion requests, answered by the facility admin."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from ehr.fhir.outcomes import FhirError
from ehr.services import care, data_requests, policy, resources
from ehr.services.context import AccessContext
from fhir_helpers import patient

OPS = AccessContext.operator("test")


@pytest.fixture
def setup(store):
    org = resources.create(store, OPS, {"resourceType": "Organization", "name": "Phòng khám"}).version.logical_id
    pid = resources.create(store, OPS, patient()).version.logical_id
    other = resources.create(store, OPS, patient("Lê Thị Hoa")).version.logical_id
    care.record(store, OPS, pid, org)
    return pid, other, policy.patient_context(str(uuid.uuid4()), pid), policy.staff_context(str(uuid.uuid4()), org, "admin")


def test_deadlines_skip_weekends():
    assert data_requests.add_working_days(date(2026, 11, 27), 2) == date(2026, 12, 1)  # Friday -> Tuesday


def test_a_request_reaches_the_admin_with_its_deadline(store, setup):
    pid, _, me, admin = setup
    task = data_requests.submit(store, me, "correction", "Sai ngày sinh, đúng là 02/03/1990")
    [queued] = data_requests.queue(store, admin)
    assert queued["id"] == task and queued["restriction"]["period"]["end"] > date.today().isoformat()
    answered = data_requests.answer(store, admin, task, accept=True, reason="Đã sửa theo giấy khai sinh")
    assert answered["status"] == "accepted"
    assert data_requests.of_patient(store, me, pid)[0]["statusReason"]["text"] == "Đã sửa theo giấy khai sinh"


def test_deletion_is_refused_while_records_must_be_kept(store, setup):
    pid, _, me, admin = setup
    assert data_requests.deletion_outlook(store, pid).kept_until.year >= date.today().year + 9
    task = data_requests.submit(store, me, "deletion", "Xin xóa toàn bộ hồ sơ")
    with pytest.raises(FhirError) as refused:
        data_requests.answer(store, admin, task, accept=True, reason="Đồng ý")
    assert refused.value.status == 409
    assert data_requests.answer(store, admin, task, accept=False, reason="Hồ sơ bệnh án phải lưu 10 năm (TT 33/2025)")["status"] == "rejected"


def test_only_the_patient_asks_and_only_for_themselves(store, setup):
    pid, other, me, admin = setup
    for who, target in ((admin, None), (me, other)):
        with pytest.raises(FhirError) as refused:
            data_requests.submit(store, who, "correction", "Sửa địa chỉ nhà", target)
        assert refused.value.status == 403
