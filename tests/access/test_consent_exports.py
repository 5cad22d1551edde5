"""Finding 9 of issue 20: an export made under a consent does not outlive the consent.

Hospital H1 reads patient A under A's consent and exports; A revokes in the health book: the
job's status and files answer 404 at once and the job runner's cleanup deletes the files. An
export of another organization, and H1's export of a patient it wrote itself, stay."""

from __future__ import annotations

from access_helpers import OPS, bearer, register, token
from ehr.services import export, healthbook_privacy, resources
from ehr.services.policy import patient_context
from world import consent


def _kick(client, headers) -> str:
    kick = client.get("/fhir/$export", headers={**headers, "Prefer": "respond-async"})
    assert kick.status_code == 202, kick.get_json()
    return kick.headers["Content-Location"].replace("http://localhost", "")


def _files(client, headers, status_url) -> list[str]:
    manifest = client.get(status_url, headers=headers)
    assert manifest.status_code == 200, manifest.get_json()
    return [item["url"].replace("http://localhost", "") for item in manifest.get_json()["output"]]


def test_revoking_a_consent_cancels_the_exports_made_under_it(app, client, store):
    settings = app.extensions["ehr.export"]
    for org in ("h1", "h2"):
        resources.update(store, OPS, "Organization", f"org-{org}", {"resourceType": "Organization", "id": f"org-{org}", "name": f"H {org}"})
    h1, h2 = (bearer(token(client, register(store, f"exp-{o}", f"org-{o}", ["system/*.cruds"]), "system/*.cruds")) for o in ("h1", "h2"))
    a = client.post("/fhir/Patient", headers=h2, json={"resourceType": "Patient", "name": [{"text": "Phạm Thu Hà"}]}).get_json()["id"]
    own = client.post("/fhir/Patient", headers=h1, json={"resourceType": "Patient", "name": [{"text": "Vũ Minh"}]}).get_json()["id"]
    patient = patient_context("acct-a", a)
    consent_id = resources.create(store, patient, consent(a, ["org-h1"])).version.logical_id
    job_a, job_own, job_h2 = _kick(client, h1), None, _kick(client, h2)
    while export.run_pending(store, settings):
        pass
    files = _files(client, h1, job_a)
    assert any(a.encode() in client.get(url, headers=h1).data for url in files)  # A is in H1's export
    # A second H1 export after A's consent ends no longer holds A, so it stays.
    healthbook_privacy.revoke(store, patient, a, consent_id)
    assert client.get(job_a, headers=h1).status_code == 404
    assert all(client.get(url, headers=h1).status_code == 404 for url in files)
    job_own = _kick(client, h1)
    while export.run_pending(store, settings):
        pass
    own_files = _files(client, h1, job_own)
    data = b"".join(client.get(url, headers=h1).data for url in own_files)
    assert own.encode() in data and a.encode() not in data
    assert _files(client, h2, job_h2)  # another organization's export is not touched
    folder = settings.directory / job_a.rsplit("/", 1)[1]
    assert folder.exists()
    export.cleanup(store, settings)
    assert not folder.exists() and (settings.directory / job_own.rsplit("/", 1)[1]).exists()
