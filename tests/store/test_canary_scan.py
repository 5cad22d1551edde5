"""No plaintext personal data anywhere in the database: canaries in every encoding, 0 hits."""

from __future__ import annotations

import json
import shutil
import subprocess
import unicodedata
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import inspect, text

from ehr.crypto.blind import fold_text
from fhir_helpers import created_id, post

CANARIES = {
    "name": "Trịnh Thị Ngọc Ánh Canarỹ",
    "cccd": "079188012345",
    "bhyt": "DN4797918801234",
    "birth": "1988-07-14",
    "phone": "0912345678",
    "email": "anh.canary@example.vn",
    "street": "Số 17 ngõ Hoà Bình Canary",
    "note": "Bệnh nhân khai đau ngực canaryđặcbiệt",
}


def encodings(value: str) -> set[bytes]:
    forms = {
        unicodedata.normalize("NFC", value),
        unicodedata.normalize("NFD", value),
        fold_text(value),
        value.upper(),
        value.lower(),
    }
    out = set()
    for form in forms:
        out.add(form.encode("utf-8"))
        out.add(json.dumps(form).strip('"').encode())  # \uXXXX escapes
        out.add(quote(form).encode())
        out.add(quote(form, safe="").encode())
    return {o for o in out if len(o) >= 6}


def write_canaries(client) -> None:
    c = CANARIES
    pid = created_id(post(client, {
        "resourceType": "Patient",
        "identifier": [{"system": "https://fhir.ehr-vn.org/sid/cccd", "value": c["cccd"]}],
        "name": [{"text": c["name"]}],
        "birthDate": c["birth"],
        "telecom": [{"system": "phone", "value": c["phone"]}, {"system": "email", "value": c["email"]}],
        "address": [{"line": [c["street"]], "text": c["street"]}],
    }))
    created_id(post(client, {
        "resourceType": "Coverage", "status": "active", "beneficiary": {"reference": f"Patient/{pid}"},
        "payor": [{"reference": f"Patient/{pid}"}], "identifier": [{"system": "https://fhir.ehr-vn.org/sid/bhyt", "value": c["bhyt"]}],
    }))
    created_id(post(client, {
        "resourceType": "Observation", "status": "final", "code": {"text": "note"}, "subject": {"reference": f"Patient/{pid}"},
        "valueString": c["note"], "note": [{"text": c["note"]}],
    }))


def database_bytes(store, tmp_path: Path) -> bytes:
    engine = store.engine
    if engine.dialect.name == "sqlite":
        path = Path(engine.url.database)
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())
    # pg_dump of every table (text columns as the server holds them) plus every value read back
    # raw, because the dump shows bytea as hex, which would hide plaintext stored in a binary column.
    chunks = []
    dump = shutil.which("pg_dump")
    if dump:
        url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        chunks.append(subprocess.run([dump, "--data-only", url], check=True, capture_output=True).stdout)
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                chunks += [v if isinstance(v, bytes) else str(v).encode() for v in row]
    return b"\n".join(chunks)


def test_no_canary_in_the_database(client, store, tmp_path):
    write_canaries(client)
    raw = database_bytes(store, tmp_path)
    assert len(raw) > 10_000
    hits = {name: form for name, value in CANARIES.items() for form in encodings(value) if form in raw}
    assert hits == {}
