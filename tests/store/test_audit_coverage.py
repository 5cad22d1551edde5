"""`audit verify` covers the tables that tell a patient who did what (issue 20, finding 8): each
tampering planted directly in the database (guard triggers dropped, as an attacker with DDL
rights would) is reported with a clear message and exit 1, and a clean trail says ok.

The world is made through the services: a patient registered by facility A's doctor (A's care),
a Consent of the patient's for facility B and its revocation (two versions), a break-glass
opening by B's doctor, all sealed and checkpointed by `flask ehr audit seal`."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import delete, func, insert, select, text, update

from access_helpers import OPS
from ehr.services import care, resources
from ehr.services.backup import restart_checkpoints
from ehr.services.policy import patient_context, staff_context
from ehr.store import audit, audit_coverage, guards
from ehr.store.access import INTERNAL
from ehr.store.schema import audit_chain, audit_log, audit_subjects, break_glass, resource_versions, resources as pointers
from fhir_helpers import patient

REASON = "bệnh nhân bất tỉnh, cần xem tiền sử dị ứng"
HOUR_US = 3_600_000_000


@dataclass
class World:
    patient: str
    consent: str
    glass_seq: int  # the sealed audit row of the break-glass opening
    register_seq: int  # the sealed audit row of the registration (which started A's care)
    checkpoints: Path
    head: Path


def _consent(patient_id: str, organization: str, status: str = "active") -> dict[str, Any]:
    now = time.time()
    instant = lambda days: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + days * 86400))  # noqa: E731
    return {
        "resourceType": "Consent", "status": status, "dateTime": instant(-1),
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient_id}"}, "performer": [{"reference": f"Patient/{patient_id}"}],
        "policy": [{"uri": "https://fhir.ehr-vn.org/consent-text/share-records/v1"}],
        "provision": {
            "type": "permit", "period": {"start": instant(-1), "end": instant(30)},
            "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}],
            "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
                       "reference": {"reference": f"Organization/{organization}"}}],
        },
    }


def _seq_of(store, action: str, **where: Any) -> int:
    stmt = select(func.max(audit_log.c.seq)).where(audit_log.c.action == action, audit_log.c.outcome == "success")
    for column, value in where.items():
        stmt = stmt.where(audit_log.c[column] == value)
    with store.engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


@pytest.fixture
def world(app, store, tmp_path, monkeypatch) -> World:
    checkpoints = tmp_path / "audit-checkpoints.log"
    monkeypatch.setitem(app.config, "EHR_AUDIT_CHECKPOINT_FILE", str(checkpoints))
    for org in ("org-a", "org-b"):
        resources.update(store, OPS, "Organization", org, {"resourceType": "Organization", "id": org, "name": org.upper()})
    doctor_a = staff_context("acct-doc-a", "org-a", "doctor")
    pid = resources.create(store, doctor_a, patient("Trần Thị Phủ")).version.logical_id
    person = patient_context("acct-p", pid)
    consent = resources.create(store, person, _consent(pid, "org-b")).version
    resources.update(store, person, "Consent", consent.logical_id, _consent(pid, "org-b", status="inactive") | {"id": consent.logical_id},
                     if_match=consent.version_id)
    care.break_glass(store, staff_context("acct-doc-b", "org-b", "doctor"), pid, REASON)
    sealed = app.test_cli_runner().invoke(args=["ehr", "audit", "seal"])
    assert sealed.exit_code == 0, sealed.output
    return World(
        pid, consent.logical_id, _seq_of(store, "break-glass", compartment=pid), _seq_of(store, "create", resource_type="Patient", logical_id=pid),
        checkpoints, Path(f"{checkpoints}.head"),
    )


def _verify(app) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["ehr", "audit", "verify"])
    return result.exit_code, result.output


@contextmanager
def _unguarded(store) -> Iterator[Any]:
    """A transaction without the append-only triggers (an attacker with DDL rights); they come back."""
    dialect = store.engine.dialect.name
    with store.engine.begin() as conn:
        for statement in guards.statements(dialect, create=False):
            conn.execute(text(statement))
    try:
        with store.engine.begin() as conn:
            yield conn
    finally:
        with store.engine.begin() as conn:
            # SQLite parses DDL against the connection's cached schema, refreshed only when a statement
            # reads the database: a pooled connection idle since the DROP would still see the triggers.
            conn.execute(text("SELECT count(*) FROM audit_log"))
            for statement in guards.statements(dialect, create=True):
                conn.execute(text(statement))


def _consent_version(w: World, number: int) -> Any:
    v = resource_versions.c
    return (v.resource_type == "Consent") & (v.logical_id == w.consent) & (v.version_id == number)


def _copy_care_row(conn, w: World, organization: str) -> None:
    """A care relationship added for another facility (a copy of A's, whatever its columns are)."""
    row = dict(conn.execute(text("SELECT * FROM care_relationships WHERE patient_id = :p"), {"p": w.patient}).mappings().one())
    row["organization_id"] = organization
    conn.execute(text(f"INSERT INTO care_relationships ({', '.join(row)}) VALUES ({', '.join(':' + c for c in row)})"), row)


# Each tampering: what it does, and what verify must say (a part of the PROBLEM line).
TAMPERING = {
    "audit_subjects row deleted": (
        lambda conn, w: conn.execute(delete(audit_subjects).where(audit_subjects.c.seq == w.glass_seq)),
        lambda w: f"PROBLEM: row {w.glass_seq}: audit_subjects lacks 1 of the patients it names",
    ),
    "audit_subjects row added": (
        lambda conn, w: conn.execute(insert(audit_subjects).values(patient_id="another-patient", seq=w.glass_seq)),
        lambda w: f"PROBLEM: row {w.glass_seq}: audit_subjects adds 1 patient(s) the row does not name",
    ),
    "break_glass grant deleted": (
        lambda conn, w: conn.execute(delete(break_glass)),
        lambda w: f"PROBLEM: row {w.glass_seq}: the break-glass opening it records has no break_glass grant",
    ),
    "break_glass grant extended": (
        lambda conn, w: conn.execute(update(break_glass).values(expires_at=break_glass.c.expires_at + 30 * 24 * HOUR_US)),
        lambda w: "does not last 1 to 240 minutes (altered?)",
    ),
    "break_glass grant moved to another patient": (
        lambda conn, w: conn.execute(update(break_glass).values(patient_id="another-patient")),
        lambda w: "has no audit row (inserted or altered?)",
    ),
    "care relationship deleted": (
        lambda conn, w: conn.execute(text("DELETE FROM care_relationships WHERE patient_id = :p"), {"p": w.patient}),
        lambda w: f"PROBLEM: row {w.register_seq} started a care relationship that is gone with no care.end row",
    ),
    "care relationship added": (
        lambda conn, w: _copy_care_row(conn, w, "org-b"),
        lambda w: f"PROBLEM: care relationship of Organization/org-b with Patient/{w.patient}: no audit row started it",
    ),
    "Consent revocation deleted": (  # the newest version gone, the pointer back at the permit
        lambda conn, w: (conn.execute(delete(resource_versions).where(_consent_version(w, 2))),
                         conn.execute(update(pointers).where(pointers.c.resource_type == "Consent", pointers.c.logical_id == w.consent)
                                      .values(version_id=1))),
        lambda w: f"records the write of Consent/{w.consent} version 2, which is gone (deleted?)",
    ),
    "Consent version back-dated": (
        lambda conn, w: conn.execute(update(resource_versions).where(_consent_version(w, 1))
                                     .values(last_updated=resource_versions.c.last_updated - 24 * HOUR_US)),
        lambda w: f"PROBLEM: Consent/{w.consent} version 1 does not match row",
    ),
    "Consent moved to another patient": (
        lambda conn, w: conn.execute(update(resource_versions).where(_consent_version(w, 2)).values(compartment="another-patient")),
        lambda w: f"PROBLEM: Consent/{w.consent} version 2 does not match row",
    ),
    "Consent pointer set back": (
        lambda conn, w: conn.execute(update(pointers).where(pointers.c.resource_type == "Consent", pointers.c.logical_id == w.consent)
                                     .values(version_id=1)),
        lambda w: f"PROBLEM: Consent/{w.consent}: its current version is not the newest of its history",
    ),
    "Consent version added": (
        lambda conn, w: conn.execute(text(
            "INSERT INTO resource_versions (resource_type, logical_id, version_id, compartment, key_id, method, last_updated, blob)"
            " SELECT resource_type, logical_id, 3, compartment, key_id, 'PUT', last_updated + 1, blob FROM resource_versions"
            " WHERE resource_type = 'Consent' AND logical_id = :c AND version_id = 1"), {"c": w.consent}),
        lambda w: f"PROBLEM: Consent/{w.consent} version 3 has no audit row of its write (inserted?)",
    ),
}


def test_a_clean_trail_verifies_with_every_table_cross_checked(app, world):
    code, output = _verify(app)
    assert code == 0 and output.rstrip().endswith("ok"), output
    assert "head file row" in output
    assert ("cross-checked: audit_subjects rows" in output and "break-glass grants 1" in output
            and "care relationships 1" in output and "Consent versions 2" in output), output


@pytest.mark.parametrize("kind", list(TAMPERING))
def test_each_planted_tampering_is_reported(app, store, world, kind):
    tamper, expected = TAMPERING[kind]
    assert _verify(app)[0] == 0
    with _unguarded(store) as conn:
        tamper(conn, world)
    code, output = _verify(app)
    assert code == 1 and expected(world) in output, output
    assert "Phủ" not in output and REASON not in output  # ids only, never personal data


def test_hiding_a_break_glass_opening_is_reported(app, store, world):
    """The finding as found: the grant and the patient's index row deleted together."""
    with _unguarded(store) as conn:
        conn.execute(delete(break_glass))
        conn.execute(delete(audit_subjects).where(audit_subjects.c.seq == world.glass_seq))
    code, output = _verify(app)
    assert code == 1, output
    assert f"row {world.glass_seq}: audit_subjects lacks 1" in output and f"row {world.glass_seq}: the break-glass opening" in output


def test_cutting_rows_sealed_after_the_last_checkpoint_is_reported(app, store, world):
    """The job runner seals every second (head file) and checkpoints every minute: a second opening
    sealed after the checkpoint is cut with its grant, index and chain rows; the head file tells."""
    checkpointed = audit.last_checkpoint(world.checkpoints)
    assert checkpointed is not None
    care.break_glass(store, staff_context("acct-doc-b", "org-b", "doctor"), world.patient, REASON)
    assert audit.seal(store.engine, app.extensions["ehr.secrets"].audit_key, anchor=audit.anchor_of(world.head), head_file=world.head) > 0
    head = audit.last_checkpoint(world.head)
    assert head is not None and head[0] > checkpointed[0] and audit.last_checkpoint(world.checkpoints) == checkpointed
    assert oct(world.head.stat().st_mode & 0o777) == "0o600" and list(world.head.parent.glob(".*.tmp")) == []
    assert _verify(app)[0] == 0
    with _unguarded(store) as conn:
        newest = conn.execute(select(func.max(break_glass.c.id))).scalar_one()
        conn.execute(delete(break_glass).where(break_glass.c.id == newest))
        for table in (audit_log, audit_subjects, audit_chain):
            conn.execute(delete(table).where(table.c.seq > checkpointed[0]))
    code, output = _verify(app)
    assert code == 1, output
    assert f"PROBLEM: sealed head row {head[0]} named by the head file is gone: the chain ends at row {checkpointed[0]}" in output
    refused = app.test_cli_runner().invoke(args=["ehr", "audit", "seal"])  # the sealer does not build on the cut chain
    assert refused.exit_code == 1 and f"no longer holds row {head[0]}" in refused.output


def test_a_rewritten_head_file_is_reported(app, world):
    seq, _ = audit.last_checkpoint(world.head)
    audit.record_head(world.head, seq, b"\x01" * 32)
    code, output = _verify(app)
    assert code == 1 and f"PROBLEM: the sealed head in the head file, row {seq}, does not match the chain" in output


def test_a_patient_ending_care_is_no_problem_and_bringing_it_back_is(app, store, world):
    """care.end (the patient, on the sharing page) names the facility in its encrypted detail:
    verify reads it there. The relationship put back behind the patient's back is reported."""
    with store.engine.connect() as conn:
        row = dict(conn.execute(text("SELECT * FROM care_relationships WHERE patient_id = :p"), {"p": world.patient}).mappings().one())
    care.end(store, patient_context("acct-p", world.patient), world.patient, "org-a")
    assert app.test_cli_runner().invoke(args=["ehr", "audit", "seal"]).exit_code == 0
    code, output = _verify(app)
    assert code == 0, output
    with _unguarded(store) as conn:
        conn.execute(text(f"INSERT INTO care_relationships ({', '.join(row)}) VALUES ({', '.join(':' + c for c in row)})"), row)
    code, output = _verify(app)
    assert code == 1 and f"PROBLEM: care relationship of Organization/org-a with Patient/{world.patient}: no audit row started it" in output


def test_care_end_ends_only_the_facility_its_detail_names(app, store, world):
    """The patient ends A's care; B's (recorded by B's admin) deleted at the same time is reported:
    verify opens the care.end row's detail to learn which facility it ended."""
    care.record(store, staff_context("acct-admin-b", "org-b", "admin"), world.patient)
    recorded = _seq_of(store, "care.record", compartment=world.patient)
    care.end(store, patient_context("acct-p", world.patient), world.patient, "org-a")
    assert app.test_cli_runner().invoke(args=["ehr", "audit", "seal"]).exit_code == 0
    assert _verify(app)[0] == 0
    with _unguarded(store) as conn:
        conn.execute(text("DELETE FROM care_relationships WHERE organization_id = 'org-b'"))
    code, output = _verify(app)
    assert code == 1 and f"PROBLEM: row {recorded} started a care relationship that is gone with no care.end row" in output, output


def test_restore_sets_aside_a_head_file_newer_than_the_restored_chain(app, store, world):
    audit.record_head(world.head, 999999, b"\xab" * 32)  # as after restoring an older backup
    code, output = _verify(app)
    assert code == 1 and "PROBLEM: sealed head row 999999 named by the head file is gone" in output
    note = restart_checkpoints(store.engine, world.checkpoints, world.head)
    assert note is not None and "the audit head file named a newer head: moved to" in note
    assert len(list(world.head.parent.glob(world.head.name + ".before-restore-*"))) == 1
    assert audit.last_checkpoint(world.head) == audit.last_checkpoint(world.checkpoints) and _verify(app)[0] == 0


def test_rows_not_sealed_yet_explain_but_do_not_oblige(app, store, world):
    """A grant whose audit row is not sealed yet is no problem (the job runner seals every second)."""
    care.break_glass(store, staff_context("acct-doc-b", "org-b", "doctor"), world.patient, REASON)
    code, output = _verify(app)
    assert code == 0 and "unsealed 1" in output, output


def test_erased_patients_keep_their_cross_checks(app, store, world):
    """Crypto-shredding leaves the rows (only keys go): the erased record still verifies."""
    shred = app.test_cli_runner().invoke(args=["ehr", "keys", "shred", world.patient, "--legal-reason", "court order 1/2026", "--yes"])
    assert shred.exit_code == 0, shred.output
    assert app.test_cli_runner().invoke(args=["ehr", "audit", "seal"]).exit_code == 0
    code, output = _verify(app)
    assert code == 0, output


def test_the_grant_bound_is_the_services_bound():
    assert audit_coverage.MAX_GRANT_US == care.MAX_BREAK_GLASS_MINUTES * 60_000_000


def test_verify_without_the_table_checks_still_checks_the_chain(app, store, world):
    with _unguarded(store) as conn:
        conn.execute(delete(break_glass))
    key = app.extensions["ehr.secrets"].audit_key
    assert audit.verify(store.engine, key, world.checkpoints, cover=False).ok
    report = audit.verify(store.engine, key, world.checkpoints, head_file=world.head)
    assert not report.ok and report.covered["break-glass grants"] == 0
    with store.reading(INTERNAL) as uow:  # the patient's access log still lists the opening: only the grant is gone
        assert audit.recent(uow, store.keys, patient=world.patient, action="break-glass")
