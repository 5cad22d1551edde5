#!/usr/bin/env python3
"""Where a request's time goes: the read-by-id or the ingest path, in-process (Flask test client,
no HTTP), under pyinstrument. The findings in bench/README.md come from this script.

    .venv/bin/python bench/profile.py --what read --db sqlite
    .venv/bin/python bench/profile.py --what ingest --db postgresql --patients 60

The database is a fresh one (a SQLite file in a temporary folder, or a throw-away PostgreSQL
database on the shared server, dropped after), loaded with the synthetic generator's patients.
pyinstrument samples the main thread only: time a request spends waiting for the audit
group-commit thread shows as `Event.wait`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from pyinstrument import Profiler  # noqa: E402

from ehr.cli.devkeys import ensure_dev_keys  # noqa: E402
from ehr.synthetic.generator import Generator  # noqa: E402
from run import Database  # noqa: E402

FHIR_JSON = "application/fhir+json"


def load(client, generator: Generator, start: int, patients: int) -> tuple[float, list[str]]:  # type: ignore[no-untyped-def]
    """Post `patients` transaction bundles; (resources/s, Observation ids)."""
    bodies = [json.dumps(b, default=float) for b in generator.patients(patients, start=start)]
    ids: list[str] = []
    started = time.perf_counter()
    for body in bodies:
        response = client.post("/fhir", data=body, content_type=FHIR_JSON)
        assert response.status_code == 200, response.data[:300]
        for entry in response.get_json()["entry"]:
            location = entry["response"].get("location", "")
            if "/fhir/Observation/" in location:
                ids.append(location.split("/fhir/Observation/")[1].split("/")[0])
    count = sum(len(json.loads(b)["entry"]) for b in bodies)
    return count / (time.perf_counter() - started), ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--what", choices=["read", "ingest"], default="read")
    parser.add_argument("--patients", type=int, default=30, help="bundles to load (ingest: also the profiled ones)")
    parser.add_argument("--n", type=int, default=2000, help="reads to profile")
    args = parser.parse_args()
    instance = Path(tempfile.mkdtemp(prefix="ehr-profile-"))
    ensure_dev_keys(instance)
    db = Database(args.db, instance)
    os.environ.update({"EHR_INSTANCE_PATH": str(instance), "EHR_DATABASE_URL": db.url, "EHR_ENV": "development", "EHR_LOG_LEVEL": "WARNING"})
    try:
        import flask_migrate

        from ehr import create_app

        app = create_app()
        with app.app_context():
            flask_migrate.upgrade()
        client = app.test_client()
        generator = Generator(seed=20261124)
        for r in generator.facility_resources():
            client.put(f"/fhir/{r['resourceType']}/{r['id']}", data=json.dumps(r), content_type=FHIR_JSON)
        rate, ids = load(client, generator, 0, args.patients)
        profiler = Profiler(interval=0.0005)
        if args.what == "read":
            started = time.perf_counter()
            profiler.start()
            for i in range(args.n):
                assert client.get(f"/fhir/Observation/{ids[i % len(ids)]}").status_code == 200
            profiler.stop()
            print(f"reads: {args.n / (time.perf_counter() - started):,.0f}/s in one thread")
        else:
            profiler.start()
            rate, _ = load(client, generator, args.patients, args.patients)
            profiler.stop()
            print(f"ingest: {rate:,.0f} resources/s in one thread")
        print(profiler.output_text(unicode=False, color=False))
        app.extensions["ehr.store"].engine.dispose()
    finally:
        db.drop()
        shutil.rmtree(instance, ignore_errors=True)


if __name__ == "__main__":
    main()
