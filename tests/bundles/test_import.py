"""`flask ehr import`: Synthea bundles, Synthea-style shared batch bundles with conditional
creates and conditional references, ndjson; interrupted and resumed with the same final content."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ehr.services import bundles, imports
from ehr.services.context import AccessContext
from ehr.store.schema import resources
from ehr.synthetic.generator import Generator
from fhir_helpers import body

DATA = Path(__file__).resolve().parent.parent / "data" / "fhir-r4" / "synthea"
SYNTHEA = sorted(p for p in DATA.glob("*.json") if p.name != "MANIFEST.json")
OPS = AccessContext.operator("test")


def live_counts(store) -> Counter:
    with store.engine.connect() as conn:
        rows = conn.execute(select(resources.c.resource_type, func.count()).where(resources.c.deleted.is_(False)).group_by(resources.c.resource_type))
        return Counter(dict(rows.all()))


@pytest.mark.slow
def test_import_the_shared_synthea_set(app, store):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["ehr", "import", *map(str, SYNTHEA)])
    assert result.exit_code == 0, result.output[-2000:]
    expected = Counter()
    for item in json.loads((DATA / "MANIFEST.json").read_text()):
        expected.update(item["resource_counts"])
    assert live_counts(store) == expected
    again = runner.invoke(args=["ehr", "import", *map(str, SYNTHEA)])
    assert again.exit_code == 0 and live_counts(store) == expected  # idempotent: nothing twice
    assert "0 loaded" in again.output.splitlines()[0] or "already loaded" in again.output


def _split_synthea(paths: list[Path], out: Path) -> tuple[int, int]:
    """Synthea's newer layout: shared Organization/Practitioner batch bundles with conditional
    creates, and patient bundles that point at them with conditional references."""
    shared: dict[str, dict] = {}
    for i, path in enumerate(paths):
        bundle = json.loads(path.read_text())
        mapping = {}
        kept = []
        for entry in bundle["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] in ("Organization", "Practitioner"):
                ident = resource["identifier"][0]
                shared[f"{ident['system']}|{ident['value']}"] = resource
                mapping[entry["fullUrl"]] = f"{resource['resourceType']}?identifier={ident['system']}|{ident['value']}"
            else:
                kept.append(entry)
        bundle["entry"] = kept
        text = json.dumps(bundle)
        for full_url, conditional in mapping.items():
            text = text.replace(f'"{full_url}"', json.dumps(conditional))
        (out / f"patient-{i}.json").write_text(text)
    for kind in ("Organization", "Practitioner"):
        entries = [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": r,
                    "request": {"method": "POST", "url": kind, "ifNoneExist": f"identifier={k}"}}
                   for k, r in shared.items() if r["resourceType"] == kind]
        (out / f"0-{kind.lower()}Information.json").write_text(json.dumps({"resourceType": "Bundle", "type": "batch", "entry": entries}))
    return sum(1 for r in shared.values() if r["resourceType"] == "Organization"), sum(1 for r in shared.values() if r["resourceType"] == "Practitioner")


def test_synthea_shared_batches_with_conditional_creates(app, store, tmp_path):
    orgs, practitioners = _split_synthea(SYNTHEA[:4] + SYNTHEA[:1], tmp_path)  # the first patient's file twice
    result = app.test_cli_runner().invoke(args=["ehr", "import", str(tmp_path)])
    counts = live_counts(store)
    assert counts["Organization"] == orgs and counts["Practitioner"] == practitioners
    assert counts["Patient"] == 4  # a byte-identical file is the same import: loaded once
    assert result.exit_code == 0, result.output[-2000:]


def _generated(tmp_path: Path, patients: int) -> list[Path]:
    generator = Generator(seed=9)
    facilities = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in generator.facility_resources()]}
    files = [tmp_path / "00-facilities.json"]
    files[0].write_text(json.dumps(facilities, default=str))
    for i, bundle in enumerate(generator.patients(patients)):
        path = tmp_path / f"p{i:03d}.json"
        path.write_text(json.dumps(bundle, default=float))
        files.append(path)
    return files


def test_interrupted_import_resumes_to_the_same_content(app, store, tmp_path, monkeypatch):
    files = _generated(tmp_path, 6)
    real = bundles.ingest_transaction
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(bundles, "ingest_transaction", interrupted)
    with pytest.raises(KeyboardInterrupt):
        imports.Importer(store, OPS).run(files)
    partial = sum(live_counts(store).values())
    monkeypatch.setattr(bundles, "ingest_transaction", real)
    reports = imports.Importer(store, OPS).run(files)
    assert sum(live_counts(store).values()) == 9 + 6 * 36 > partial > 0  # 3 facilities + 6 doctors, 6 patients x 36
    assert [r.already for r in reports][1:5] == [36, 36, 36, 0] and all(not r.rejected for r in reports)
    # Same final content: every entry of every file is there once, as sent.
    client = app.test_client()
    import hashlib

    for path in files[1:]:
        key = hashlib.sha256(path.read_bytes()).hexdigest()
        bundle = json.loads(path.read_text())
        first = bundle["entry"][0]["resource"]
        stored = body(client.get(f"/fhir/Patient/{imports._stable_id(key, 0)}"))
        assert stored["name"] == first["name"] and stored["identifier"] == first["identifier"]


def test_ndjson_import_resumes_and_reports_rejections(app, store, tmp_path, monkeypatch):
    pid = str(uuid.uuid4())
    lines = [json.dumps({"resourceType": "Patient", "id": pid})]
    lines += [json.dumps({"resourceType": "Observation", "id": f"o{i}", "status": "final", "code": {"text": str(i)},
                          "subject": {"reference": f"Patient/{pid}"}}) for i in range(40)]
    lines.insert(20, "{not json")
    lines.insert(30, json.dumps({"resourceType": "Observation", "id": "bad", "status": "final"}))
    forward = tmp_path / "a-forward.ndjson"  # references a patient that another file brings later
    forward.write_text(json.dumps({"resourceType": "Observation", "id": "fwd", "status": "final", "code": {"text": "x"},
                                   "subject": {"reference": "Patient/later"}}) + "\n")
    main = tmp_path / "b-main.ndjson"
    main.write_text("\n".join(lines) + "\n")
    later = tmp_path / "c-later.ndjson"
    later.write_text(json.dumps({"resourceType": "Patient", "id": "later"}) + "\n")
    real = bundles.ingest_transaction
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(bundles, "ingest_transaction", interrupted)
    with pytest.raises(KeyboardInterrupt):
        imports.Importer(store, OPS, batch=10).run([forward, main, later])
    monkeypatch.setattr(bundles, "ingest_transaction", real)
    reports = imports.Importer(store, OPS, batch=10).run([forward, main, later])
    counts = live_counts(store)
    assert counts["Observation"] == 41 and counts["Patient"] == 2  # 40 + the forward reference, retried at the end
    rejected = {x.position: x.reason for x in reports[1].rejected}
    assert set(rejected) == {20, 30} and "JSON" in rejected[20] and "code" in rejected[30]
    assert reports[1].already > 0
