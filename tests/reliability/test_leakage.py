"""No plaintext canary anywhere the server wrote during the crash workload.

The crash workload (test_crash.py) plants a national ID (CCCD), a name with diacritics and a phone
number in every trial; afterwards a Bulk export runs through the job runner and searches carry the
canaries in query strings and form bodies. Then the raw bytes of the database files (SQLite file,
-wal, -shm; on PostgreSQL a pg_dump, every value read back raw, this database's relation files
after a CHECKPOINT, the WAL segments written during the run and the part of the server log written
during the run), the instance folder (exports, audit checkpoints, keys), the gunicorn logs and the
server's TMPDIR are scanned for the canaries in UTF-8, UTF-16LE/BE, NFC and NFD, accent-folded,
upper/lower case, hex, base64 (3 alignments), JSON escapes, URL encoding, and unkeyed digests of
the CCCD: 0 hits.
"""

from __future__ import annotations

import json

import pytest

from reliability.conftest import CrashOutcome

pytestmark = [pytest.mark.reliability, pytest.mark.e2e]


def test_no_canary_after_the_crash_workload(crash_short: CrashOutcome) -> None:
    leak = crash_short.leak
    print(f"\nscanned {leak.scanned_files} files, {leak.scanned_bytes / 1e6:.1f} MB, {leak.patterns} patterns; "
          f"sources: {', '.join(leak.sources)}; exported {crash_short.export_resources} resources")
    assert crash_short.export_resources > 0
    assert leak.scanned_bytes > 100_000
    assert leak.hits == {}


def test_the_scan_sees_every_encoding(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Positive control: each canary, planted in each encoding inside random bytes, is found."""
    import base64
    import os
    import random
    import unicodedata

    from reliability.canaries import patterns, scan_files
    from reliability.crash import Canaries

    values = Canaries.random(random.Random(3)).items()
    pats = patterns(values)
    planted = {}
    for name, value in values.items():
        nfd = unicodedata.normalize("NFD", value)
        for label, raw in {
            "utf-8": value.encode(), "nfd-utf-16-le": nfd.encode("utf-16-le"), "utf-16-be": value.encode("utf-16-be"),
            "hex": value.encode().hex().encode(), "HEX-utf-16": value.encode("utf-16-le").hex().upper().encode(),
            "base64+1": base64.b64encode(b"x" + value.encode()), "base64+2": base64.b64encode(b"xy" + nfd.encode()),
            "json": json.dumps(value).encode(), "upper": value.upper().encode(),
        }.items():
            path = tmp_path / f"{name}-{label}.bin"
            path.write_bytes(os.urandom(5000) + raw + os.urandom(5000))
            planted[str(path)] = name
    hits = scan_files([tmp_path / p for p in os.listdir(tmp_path)], pats)
    assert set(hits) == set(planted)
    assert all(any(h.startswith(planted[path] + ":") for h in found) for path, found in hits.items())
    clean = tmp_path / "clean.bin"
    clean.write_bytes(os.urandom(2_000_000))
    assert scan_files([clean], pats) == {}
