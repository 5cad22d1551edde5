"""The queue's services (issue 14): numbers per facility and Vietnam day, one Encounter per
check-in, status moves with statusHistory, If-Match against two desks, role rules, signed visits."""

from __future__ import annotations

import threading
from datetime import date, datetime, timezone

import pytest

from auth.auth_helpers import OPS
from ehr.fhir import jsonio
from ehr.fhir import queue as fq
from ehr.fhir.outcomes import FhirError
from ehr.services import care, queue, resources, search
from ehr.services.policy import staff_context

DAY = date(2026, 12, 3)
NUMBERS = [f"00119001234{i}" for i in range(10)]


def _utc(iso: str) -> int:
    return int(datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp() * 1_000_000)


AT = _utc("2026-12-03T02:00:00")  # 09:00 in Vietnam


@pytest.fixture
def desk(store):
    """(receptionist, doctor, nurse, patient ids) of one facility; the patients registered there."""
    resources.update(store, OPS, "Organization", "org-q", {"resourceType": "Organization", "id": "org-q", "name": "Phòng khám Q"})
    reception = staff_context("acct-rec", "org-q", "receptionist")
    pids = [resources.create(store, reception, {
        "resourceType": "Patient", "name": [{"text": f"Bệnh nhân {i}"}], "identifier": [{"system": store.systems.cccd, "value": n}],
    }).version.logical_id for i, n in enumerate(NUMBERS[:5])]
    return reception, staff_context("acct-doc", "org-q", "doctor"), staff_context("acct-nurse", "org-q", "nurse"), pids


def _doc(store, encounter_id):
    return jsonio.loads_stored(resources.read(store, OPS, "Encounter", encounter_id).body or b"{}")


def _encounters(store, pid):
    page = search.search(store, OPS, "Encounter", [("subject", f"Patient/{pid}")])
    return [v.logical_id for v, mode in page.entries if mode == "match"]


def test_check_in_queues_with_numbers_per_facility_and_day(store, desk):
    reception, _, _, pids = desk
    ids = [queue.arrive(store, reception, pid, AT + i * 60_000_000) for i, pid in enumerate(pids[:3])]
    docs = [_doc(store, i) for i in ids]
    assert [fq.number_of(d, store.systems.base) for d in docs] == [1, 2, 3]
    assert docs[0]["status"] == "arrived" and docs[0]["class"]["code"] == "AMB"
    assert docs[0]["serviceProvider"] == {"reference": "Organization/org-q"}
    assert docs[0]["period"]["start"] == "2026-12-03T09:00:00+07:00"
    assert docs[0]["identifier"][0]["system"] == f"{store.systems.base}/queue/org-q/2026-12-03"
    # The next Vietnam day starts again at 1 (17:30 UTC on the 3rd is 00:30 on the 4th in Vietnam).
    tomorrow = queue.arrive(store, reception, pids[3], _utc("2026-12-03T17:30:00"))
    assert fq.number_of(_doc(store, tomorrow), store.systems.base) == 1


def test_checking_in_twice_keeps_one_encounter(store, desk):
    reception, doctor, _, pids = desk
    first = care.check_in(store, reception, NUMBERS[0])
    assert first == pids[0]
    again = care.check_in(store, reception, NUMBERS[0])
    assert again == pids[0] and len(_encounters(store, pids[0])) == 1
    [encounter] = _encounters(store, pids[0])
    queue.start(store, doctor, encounter)
    care.check_in(store, reception, NUMBERS[0])  # still in the room: the same visit
    assert _encounters(store, pids[0]) == [encounter]
    queue.finish(store, doctor, encounter)
    care.check_in(store, reception, NUMBERS[0])  # back after the visit ended: a new place in the queue
    assert len(_encounters(store, pids[0])) == 2


def test_moves_change_status_and_keep_the_history(store, desk):
    reception, doctor, nurse, pids = desk
    first, second, third = (queue.arrive(store, reception, pid, AT + i * 60_000_000) for i, pid in enumerate(pids[:3]))
    assert queue.call_next(store, nurse, AT + 10 * 60_000_000) == first
    assert queue.call_next(store, reception, AT + 11 * 60_000_000) == second
    queue.start(store, doctor, first, now=AT + 12 * 60_000_000)
    queue.finish(store, doctor, first, now=AT + 30 * 60_000_000)
    queue.cancel(store, reception, third, now=AT + 40 * 60_000_000)
    done = _doc(store, first)
    assert done["status"] == "finished" and done["period"] == {"start": "2026-12-03T09:00:00+07:00", "end": "2026-12-03T09:30:00+07:00"}
    assert done["statusHistory"] == [
        {"status": "arrived", "period": {"start": "2026-12-03T09:00:00+07:00", "end": "2026-12-03T09:10:00+07:00"}},
        {"status": "triaged", "period": {"start": "2026-12-03T09:10:00+07:00", "end": "2026-12-03T09:12:00+07:00"}},
        {"status": "in-progress", "period": {"start": "2026-12-03T09:12:00+07:00", "end": "2026-12-03T09:30:00+07:00"}},
    ]
    assert _doc(store, second)["status"] == "triaged"
    assert _doc(store, third)["status"] == "cancelled" and _doc(store, third)["statusHistory"][0]["status"] == "arrived"
    assert queue.call_next(store, nurse, AT + 41 * 60_000_000) is None  # nobody is waiting any more
    rows = {r.encounter_id: r for r in queue.today(store, doctor, DAY, AT + 45 * 60_000_000)}
    assert [r.number for r in rows.values()] == [1, 2, 3]
    assert (rows[first].group, rows[first].waiting_minutes) == ("finished", 12)
    assert (rows[second].group, rows[second].waiting_minutes) == ("waiting", 44)  # called, not started: still waiting
    assert (rows[third].group, rows[third].waiting_minutes) == ("cancelled", 38)
    assert rows[first].started and rows[first].started.strftime("%H:%M") == "09:12"


def test_a_move_on_an_old_version_or_from_the_wrong_state_is_refused(store, desk):
    reception, doctor, nurse, pids = desk
    encounter = queue.arrive(store, reception, pids[0], AT)
    version = resources.read(store, OPS, "Encounter", encounter).version_id
    queue.start(store, doctor, encounter, version)
    with pytest.raises(queue.QueueError) as lost:
        queue.start(store, nurse, encounter, version)  # the second desk clicked on the same page
    assert (lost.value.status, lost.value.reason) == (412, "changed")
    with pytest.raises(queue.QueueError) as wrong:
        queue.cancel(store, reception, encounter)  # already in the room
    assert (wrong.value.status, wrong.value.reason) == (409, "status")


def test_role_rules(store, desk):
    reception, doctor, _, pids = desk
    encounter = queue.arrive(store, reception, pids[0], AT)
    for move in (queue.start, queue.finish):
        with pytest.raises(queue.QueueError) as refused:
            move(store, reception, encounter)
        assert (refused.value.status, refused.value.reason) == (403, "role")
    with pytest.raises(queue.QueueError):
        queue.cancel(store, doctor, encounter)
    admin = staff_context("acct-admin", "org-q", "admin")
    assert not queue.queues(admin)
    assert care.check_in(store, admin, NUMBERS[1]) == pids[1] and _encounters(store, pids[1]) == []  # checked in, not queued
    assert _doc(store, encounter)["status"] == "arrived"


def test_another_facilitys_encounter_is_not_in_this_queue(store, desk):
    reception, _, _, pids = desk
    encounter = queue.arrive(store, reception, pids[0], AT)
    other = staff_context("acct-doc-x", "org-x", "doctor")
    with pytest.raises(queue.QueueError) as refused:
        queue.start(store, other, encounter)
    assert refused.value.status == 404


def test_a_signed_visit_cannot_move(store, desk, app):
    from ehr.services import signing

    reception, doctor, _, pids = desk
    encounter = queue.arrive(store, reception, pids[0], AT)
    queue.start(store, doctor, encounter)
    signing.sign_visit(store, doctor, app.extensions["ehr.signing"], encounter)
    for move in (queue.finish, queue.start, queue.cancel):
        ctx = reception if move is queue.cancel else doctor
        with pytest.raises(queue.QueueError) as refused:
            move(store, ctx, encounter)
        assert (refused.value.status, refused.value.reason) == (409, "signed")


def test_concurrent_check_ins_never_share_a_number(store, desk):
    reception, _, _, _ = desk
    pids = [resources.create(store, reception, {"resourceType": "Patient", "name": [{"text": f"Song song {i}"}]}).version.logical_id
            for i in range(8)]
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(pids))

    def arrive(pid: str) -> None:
        barrier.wait()
        try:
            results.append(queue.arrive(store, reception, pid, AT))
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=arrive, args=(pid,)) for pid in pids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(fq.number_of(_doc(store, e), store.systems.base) for e in results) == list(range(1, 9))


def test_two_desks_calling_at_once_call_two_patients(store, desk):
    reception, _, nurse, pids = desk
    for i, pid in enumerate(pids[:2]):
        queue.arrive(store, reception, pid, AT + i)
    called: list[str | None] = []
    barrier = threading.Barrier(2)

    def call(ctx) -> None:
        barrier.wait()
        called.append(queue.call_next(store, ctx, AT + 60_000_000))

    threads = [threading.Thread(target=call, args=(ctx,)) for ctx in (reception, nurse)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(called) == 2 and None not in called and len(set(called)) == 2


def test_a_queue_that_cannot_be_written_leaves_the_check_in_done(store, desk):
    _, _, _, pids = desk
    # A facility without an Organization resource: the Encounter's serviceProvider cannot resolve.
    nurse = staff_context("acct-nurse-n", "org-nowhere", "nurse")
    care.break_glass_by_national_id(store, nurse, NUMBERS[4], "bất tỉnh sau tai nạn giao thông", 30)
    assert care.check_in(store, nurse, NUMBERS[4]) == pids[4]  # in the facility's care all the same
    assert _encounters(store, pids[4]) == []
    with pytest.raises(FhirError) as refused:
        queue.arrive(store, nurse, pids[4], AT)
    assert refused.value.status == 422
