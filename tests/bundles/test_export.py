"""Bulk Data export in process: kick-off rules, status, manifest, files, levels, cancel, resume."""

from __future__ import annotations

import json
import uuid
from collections import Counter

import pytest
from sqlalchemy import select, update

from access_helpers import OPS, bearer, register, token
from ehr.services import export, resources
from ehr.services.context import AccessContext
from ehr.store.schema import export_jobs
from fhir_helpers import body, created_id, post

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
CANARY = "Phùng Thị Xuấtkhẩu"


def _seed(client):
    org = created_id(post(client, {"resourceType": "Organization", "name": "Phòng khám"}))
    patients = [created_id(post(client, {"resourceType": "Patient", "name": [{"text": f"{CANARY} {i}"}]})) for i in range(3)]
    for pid in patients:
        for i in range(4):
            created_id(post(client, {"resourceType": "Observation", "status": "final", "code": {"text": str(i)}, "subject": {"reference": f"Patient/{pid}"}}))
    return org, patients


def _kick(client, path):
    response = client.get(path, headers=ASYNC)
    assert response.status_code == 202, response.data
    return response.headers["Content-Location"].split("/fhir")[1]


def _finish(app, client, status_path):
    pending = client.get(f"/fhir{status_path}")
    assert pending.status_code == 202 and pending.headers["X-Progress"]
    while export.run_pending(app.extensions["ehr.store"], app.extensions["ehr.export"]):
        pass
    done = client.get(f"/fhir{status_path}")
    assert done.status_code == 200, done.data
    return json.loads(done.data)


def _download(client, manifest):
    out = {}
    for item in manifest["output"]:
        response = client.get(item["url"].split("localhost")[1])
        assert response.status_code == 200 and response.mimetype == "application/fhir+ndjson"
        lines = [json.loads(line) for line in response.data.decode().splitlines()]
        assert len(lines) == item["count"]
        out[item["type"]] = lines
    return out


def test_kick_off_rules(client):
    assert client.get("/fhir/$export").status_code == 400  # no Prefer: respond-async
    assert client.get("/fhir/$export?_outputFormat=text/csv", headers=ASYNC).status_code == 400
    assert client.get("/fhir/$export?_type=Nonsense", headers=ASYNC).status_code == 400
    assert client.get("/fhir/$export?_since=yesterday", headers=ASYNC).status_code == 400
    assert client.get("/fhir/$export?_elements=id", headers=ASYNC).status_code == 400
    assert client.get("/fhir/Group/none/$export", headers=ASYNC).status_code == 404


def test_system_export_round_trip(app, client):
    org, patients = _seed(client)
    manifest = _finish(app, client, _kick(client, "/fhir/$export?_outputFormat=application/fhir%2Bndjson"))
    assert manifest["requiresAccessToken"] is True and manifest["transactionTime"]
    files = _download(client, manifest)
    assert Counter({t: len(v) for t, v in files.items()}) == {"Organization": 1, "Patient": 3, "Observation": 12}
    assert {p["id"] for p in files["Patient"]} == set(patients)
    stored = body(client.get(f"/fhir/Patient/{patients[0]}"))
    assert next(p for p in files["Patient"] if p["id"] == patients[0]) == stored


def test_levels_and_filters(app, client):
    org, patients = _seed(client)
    files = _download(client, _finish(app, client, _kick(client, "/fhir/Patient/$export")))
    assert "Organization" not in files and len(files["Observation"]) == 12
    only = _download(client, _finish(app, client, _kick(client, "/fhir/$export?_type=Patient")))
    assert set(only) == {"Patient"}
    later = _download(client, _finish(app, client, _kick(client, "/fhir/$export?_since=2999-01-01T00:00:00Z")))
    assert later == {}
    group = created_id(post(client, {"resourceType": "Group", "type": "person", "actual": True, "member": [{"entity": {"reference": f"Patient/{patients[0]}"}}]}))
    files = _download(client, _finish(app, client, _kick(client, f"/fhir/Group/{group}/$export")))
    assert [p["id"] for p in files["Patient"]] == [patients[0]] and len(files["Observation"]) == 4


def test_cancel_and_other_requesters(app, client, store):
    _seed(client)
    status_path = _kick(client, "/fhir/$export")
    job_id = status_path.rsplit("/", 1)[1]
    stranger = AccessContext(principal="system:other-hospital", kind="system", scopes=frozenset({"system/*.rs"}))
    with pytest.raises(Exception) as caught:
        export.status(store, stranger, job_id, "x")
    assert getattr(caught.value, "status", None) == 404
    assert client.delete(f"/fhir{status_path}").status_code == 202
    assert client.get(f"/fhir{status_path}").status_code == 404
    assert not export.run_pending(store, app.extensions["ehr.export"])


def test_files_at_rest_hold_no_plaintext(app, client):
    _seed(client)
    _finish(app, client, _kick(client, "/fhir/$export"))
    folder = app.extensions["ehr.export"].directory
    raw = b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())
    assert raw and CANARY.encode() not in raw and b"Observation" not in raw


def test_a_dead_runner_is_resumed_without_loss_or_duplicates(app, client, store, monkeypatch):
    _seed(client)
    status_path = _kick(client, "/fhir/$export")
    job_id = status_path.rsplit("/", 1)[1]
    settings = export.ExportSettings(app.extensions["ehr.export"].directory, batch=2, lease_seconds=30)
    real = export.exports.checkpoint

    def dying_checkpoint(uow, job, owner, progress, lease):
        state = json.loads(progress)
        if state["files"].get("Observation", {}).get("chunks") == 2 and "Observation" not in state["done"]:
            real(uow, job, owner, progress, lease)  # the second chunk is checkpointed...
            # A torn write past the last checkpoint, then the process dies.
            with open(settings.directory / job_id / "Observation.ndjson.enc", "ab") as fh:
                fh.write(b"\x00\x00\x01\x00partial chunk")
            raise SystemExit("runner killed")
        return real(uow, job, owner, progress, lease)

    monkeypatch.setattr(export.exports, "checkpoint", dying_checkpoint)
    with pytest.raises(SystemExit):
        export.run_pending(store, settings)
    monkeypatch.setattr(export.exports, "checkpoint", real)
    assert client.get(f"/fhir{status_path}").status_code == 202
    assert not export.run_pending(store, settings)  # the dead runner's lease still holds
    with store.engine.begin() as conn:
        conn.execute(update(export_jobs).values(lease_until=0))  # ...until it expires
    assert export.run_pending(store, settings)
    files = _download(client, json.loads(client.get(f"/fhir{status_path}").data))
    observations = [o["id"] for o in files["Observation"]]
    assert len(observations) == 12 and len(set(observations)) == 12
    assert json.loads(client.get(f"/fhir{status_path}").data)["output"]


def test_expired_exports_are_deleted(app, client, store):
    _seed(client)
    status_path = _kick(client, "/fhir/$export")
    job_id = status_path.rsplit("/", 1)[1]
    _finish(app, client, status_path)
    settings = app.extensions["ehr.export"]
    assert export.cleanup(store, settings) == 0  # not expired yet: kept
    assert any((settings.directory / job_id).iterdir())
    with store.engine.begin() as conn:
        conn.execute(update(export_jobs).where(export_jobs.c.job_id == job_id).values(expires_at=1))
    assert export.cleanup(store, settings) == 1
    assert not (settings.directory / job_id).exists()
    with store.engine.connect() as conn:
        assert conn.execute(select(export_jobs).where(export_jobs.c.job_id == job_id)).first() is None
    assert client.get(f"/fhir{status_path}").status_code == 404


def test_a_stranger_cannot_download_an_export_file(store, secured):
    web = secured.test_client()
    for org in ("org-a", "org-b"):
        resources.update(store, OPS, "Organization", org, {"resourceType": "Organization", "id": org, "name": org})
    owner = bearer(token(web, register(store, "exporter", "org-a", ["system/*.cruds"]), "system/*.cruds"))
    stranger = bearer(token(web, register(store, "stranger", "org-b", ["system/*.rs"])))
    assert web.post("/fhir/Patient", headers=owner, json={"resourceType": "Patient", "name": [{"text": CANARY}]}).status_code == 201
    kicked = web.get("/fhir/Patient/$export", headers={**owner, **ASYNC})
    assert kicked.status_code == 202, kicked.data
    status_path = kicked.headers["Content-Location"].split("localhost")[1]
    while export.run_pending(store, secured.extensions["ehr.export"]):
        pass
    manifest = json.loads(web.get(status_path, headers=owner).data)
    [url] = [item["url"].split("localhost")[1] for item in manifest["output"] if item["type"] == "Patient"]
    assert web.get(url, headers=owner).status_code == 200
    assert web.get(url.replace("Patient.ndjson", "Observation.ndjson"), headers=owner).status_code == 404  # not in the manifest
    refused = web.get(url, headers=stranger)
    job_id = status_path.rsplit("/", 1)[1]
    unknown = web.get(url.replace(job_id, str(uuid.uuid4())), headers=stranger)
    assert refused.status_code == unknown.status_code == 404 and CANARY.encode() not in refused.data
    assert refused.get_json()["issue"][0]["code"] == unknown.get_json()["issue"][0]["code"]


def test_export_files_are_0600_in_folders_0700(app, client):
    _seed(client)
    _finish(app, client, _kick(client, "/fhir/$export"))
    folder = app.extensions["ehr.export"].directory
    modes = {str(p): (p.is_dir(), p.stat().st_mode & 0o777) for p in [folder, *folder.rglob("*")]}
    assert any(not is_dir for is_dir, _ in modes.values())
    assert all(mode == (0o700 if is_dir else 0o600) for is_dir, mode in modes.values()), modes
