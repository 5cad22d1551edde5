"""Master-key rotation while readers keep reading: every read succeeds, old versions stay readable."""

from __future__ import annotations

import threading

from sqlalchemy import select

from ehr.crypto.keyring import Keyring, read_keyfile, write_keyfile
from ehr.services import resources
from ehr.services.context import AccessContext
from ehr.store.schema import data_keys
from fhir_helpers import patient

OPS = AccessContext.operator("test")


def _primaries(store) -> set[str]:
    with store.engine.connect() as conn:
        return {row[0] for row in conn.execute(select(data_keys.c.master_key_id).where(data_keys.c.wrapped.is_not(None)))}


class ReadLoad:
    """Reader threads hammering read and vread; counts the reads that overlapped a rotation."""

    def __init__(self, app, ids: list[str]) -> None:
        self.app, self.ids = app, ids
        self.stop, self.rotating = threading.Event(), threading.Event()
        self.lock = threading.Lock()
        self.during = 0
        self.failures: list[int] = []
        self.threads = [threading.Thread(target=self._run, args=(i * 50,)) for i in range(3)]

    def _run(self, offset: int) -> None:
        client = self.app.test_client()
        n = 0
        while not self.stop.is_set():
            path = f"/fhir/Patient/{self.ids[(offset + n) % len(self.ids)]}" if n % 5 else f"/fhir/Patient/{self.ids[0]}/_history/1"
            before = self.rotating.is_set()
            status = client.get(path).status_code
            with self.lock:
                if status != 200:
                    self.failures.append(status)
                if before and self.rotating.is_set():
                    self.during += 1
            n += 1

    def __enter__(self) -> "ReadLoad":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()


def test_rotation_under_concurrent_reads(app, store):
    ids = [resources.create(store, OPS, patient(f"Lý Văn {n}")).version.logical_id for n in range(250)]
    updated = resources.update(store, OPS, "Patient", ids[0], patient("Lý Văn Đổi", id=ids[0]))
    before = _primaries(store)
    runner = app.test_cli_runner()
    rounds = 0
    with ReadLoad(app, ids) as load:
        # Each round is a real rotation: a new master key, then every data key re-wrapped, one per
        # transaction. Repeat until at least 1,000 reads (each audited: a commit of its own) overlapped a
        # running rotation.
        while load.during < 1000 and rounds < 200:  # a loaded machine needs more rounds, never fewer reads
            load.rotating.set()
            result = runner.invoke(args=["ehr", "keys", "rotate", "--new-master", "--batch", "1"])
            load.rotating.clear()
            assert result.exit_code == 0, result.output
            assert "re-wrapped 0 " not in result.output, result.output  # every round really rotates
            rounds += 1
    assert load.failures == []
    assert load.during >= 1000, (load.during, rounds)
    after = _primaries(store)
    assert len(before) == 1 and len(after) == 1 and after != before
    # Old master keys can now leave the key file: every version still opens.
    ring = read_keyfile(store.master.path)
    write_keyfile(store.master.path, Keyring(ring.primary, {ring.primary: ring.keys[ring.primary]}, ring.development))
    client = app.test_client()
    assert client.get(f"/fhir/Patient/{ids[0]}/_history/1").status_code == 200
    assert client.get(f"/fhir/Patient/{ids[0]}").get_json()["meta"]["versionId"] == str(updated.version.version_id)


def test_rotation_is_idempotent(app, store):
    resources.create(store, OPS, patient())
    runner = app.test_cli_runner()
    assert runner.invoke(args=["ehr", "keys", "rotate", "--new-master"]).exit_code == 0
    again = runner.invoke(args=["ehr", "keys", "rotate"])
    assert again.exit_code == 0 and "re-wrapped 0 data keys" in again.output
