"""Crypto-shredding: refused inside the retention period without a legal reason; afterwards the
patient's records are unreadable, their index rows gone, other patients untouched; audited."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select, text

from ehr.services import keys
from ehr.services.context import AccessContext
from ehr.store.access import INTERNAL
from ehr.store import audit
from ehr.store.schema import data_keys, idx_token
from fhir_helpers import created_id, patient, post

OPS = AccessContext.operator("test")


def _setup(client):
    erased = created_id(post(client, patient("Mai Thị Xóa", identifier=[{"system": "urn:x", "value": "079100000001"}])))
    kept = created_id(post(client, patient("Mai Văn Giữ", identifier=[{"system": "urn:x", "value": "079100000002"}])))
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": f"Patient/{erased}"}}
    oid = created_id(post(client, obs))
    return erased, kept, oid


def test_shred_is_refused_inside_retention_without_reason(app, client, store):
    erased, _, _ = _setup(client)
    result = app.test_cli_runner().invoke(args=["ehr", "keys", "shred", erased, "--yes"])
    assert result.exit_code != 0 and "retention" in result.output
    assert client.get(f"/fhir/Patient/{erased}").status_code == 200
    with store.reading(INTERNAL) as uow:
        assert audit.recent(uow, store.keys, "keys.shred")[0]["outcome"] == "refused"


def test_shred_with_legal_reason_erases_only_that_patient(app, client, store):
    erased, kept, oid = _setup(client)
    with store.engine.connect() as conn:
        wrapped = conn.execute(select(data_keys.c.wrapped).where(data_keys.c.compartment == erased)).scalar_one()
    reason = "Quyết định của Tòa án số 12/2026/QĐ-TA"
    result = app.test_cli_runner().invoke(args=["ehr", "keys", "shred", erased, "--legal-reason", reason, "--yes"])
    assert result.exit_code == 0, result.output
    for path in (f"/fhir/Patient/{erased}", f"/fhir/Observation/{oid}", f"/fhir/Patient/{erased}/_history/1"):
        assert client.get(path).status_code == 410, path
    assert client.get(f"/fhir/Patient/{kept}").status_code == 200
    assert client.get(f"/fhir/Patient?identifier=079100000002").get_json()["entry"]
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(idx_token).where(idx_token.c.compartment == erased)).scalar() == 0
    with store.reading(INTERNAL) as uow:
        record = audit.recent(uow, store.keys, "keys.shred")[0]
    assert record["outcome"] == "success" and record["detail"]["legal_reason"] == reason
    # Nothing can be added to an erased record.
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": f"Patient/{erased}"}}
    assert post(client, obs).status_code in (410, 422)
    if store.engine.dialect.name == "sqlite":  # the wrapped key is gone from the file, free pages included
        with store.engine.begin() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        path = Path(store.engine.url.database)
        raw = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
        assert wrapped not in raw


def test_shred_unknown_patient_is_harmless(store):
    report = keys.shred(store, OPS, "no-such-patient", None)
    assert report.key_id is None
