"""A tampered ciphertext or a moved row never returns data: 500, code exception, incident logged."""

from __future__ import annotations

import logging

from sqlalchemy import select, update

from ehr.store.schema import resource_versions as rv
from ehr.store.schema import resources
from fhir_helpers import body, created_id, outcome_codes, patient, post, put

CANARY = "Đoàn Thị Canary"


def _blob(store, rid, version=1) -> bytes:
    with store.engine.connect() as conn:
        return conn.execute(select(rv.c.blob).where(rv.c.logical_id == rid, rv.c.version_id == version)).scalar_one()


def _set_blob(store, rid, blob, version=1) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(rv).where(rv.c.logical_id == rid, rv.c.version_id == version).values(blob=blob))


def _assert_refused(response, caplog) -> None:
    assert response.status_code == 500
    assert outcome_codes(response) == ["exception"]
    assert CANARY.encode() not in response.data
    incident = body(response)["issue"][0]["diagnostics"].rsplit(" ", 1)[-1]
    assert any(incident in r.getMessage() and "IntegrityFailure" in r.getMessage() for r in caplog.records)


def test_flipped_byte_fails_closed(client, store, caplog):
    rid = created_id(post(client, patient(CANARY)))
    blob = bytearray(_blob(store, rid))
    blob[len(blob) // 2] ^= 0x01
    _set_blob(store, rid, bytes(blob))
    with caplog.at_level(logging.ERROR):
        _assert_refused(client.get(f"/fhir/Patient/{rid}"), caplog)


def test_ciphertext_copied_into_another_row_fails(client, store, caplog):
    first = created_id(post(client, patient(CANARY)))
    second = created_id(post(client, patient("Ngô Văn Khác")))
    _set_blob(store, second, _blob(store, first))
    with caplog.at_level(logging.ERROR):
        _assert_refused(client.get(f"/fhir/Patient/{second}"), caplog)


def test_older_version_ciphertext_copied_forward_fails(client, store, caplog):
    rid = created_id(post(client, patient(CANARY)))
    put(client, patient("Đoàn Thị Mới", id=rid))
    _set_blob(store, rid, _blob(store, rid, 1), version=2)
    with caplog.at_level(logging.ERROR):
        _assert_refused(client.get(f"/fhir/Patient/{rid}"), caplog)


def test_current_pointer_rolled_back_is_detected(client, store, caplog):
    rid = created_id(post(client, patient(CANARY)))
    put(client, patient("Đoàn Thị Mới", id=rid))
    with store.engine.begin() as conn:
        conn.execute(update(resources).where(resources.c.logical_id == rid).values(version_id=1))
    with caplog.at_level(logging.ERROR):
        _assert_refused(client.get(f"/fhir/Patient/{rid}"), caplog)
