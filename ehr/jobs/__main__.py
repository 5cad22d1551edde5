"""The job runner: claims Bulk Data export jobs from the database and runs them; deletes expired
exports; seals the audit chain every second (each seal replaces the head file) and checkpoints its
head every minute. Started by the gunicorn master (gunicorn.conf.py) and stops when its parent goes
away, so a killed server never leaves an orphan behind; any runner resumes what a dead one left."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time

from ehr import audit_relay_path, create_app
from ehr.services import export
from ehr.store import audit
from ehr.store.audit_relay import RelayServer

log = logging.getLogger("ehr.jobs")


def main() -> int:
    app = create_app()
    store = app.extensions["ehr.store"]
    settings = app.extensions["ehr.export"]
    audit_key = app.extensions["ehr.secrets"].audit_key
    checkpoints, head = audit.trail_files(app.config, app.instance_path)
    seal_every = float(os.environ.get("EHR_AUDIT_SEAL_SECONDS", "1"))
    checkpoint_every = float(os.environ.get("EHR_AUDIT_CHECKPOINT_SECONDS", "60"))
    anchor = None  # the chain head this runner sealed last: the chain must still hold it
    parent = os.getppid()
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    relay = None
    if (relay_path := audit_relay_path(app)) is not None:
        relay = RelayServer(store.engine, relay_path)
        try:
            relay.start()
        except OSError:  # e.g. a path too long for a Unix socket: workers commit their own records
            log.exception("audit relay not started")
            relay = None
    log.info("job runner started (parent %s)", parent)
    last_cleanup = last_seal = last_checkpoint = 0.0
    while not stopping and os.getppid() == parent:
        try:
            worked = export.run_pending(store, settings)
            # Often: the files of jobs cancelled by a revoked consent must not linger.
            if time.monotonic() - last_cleanup > float(os.environ.get("EHR_EXPORT_CLEANUP_SECONDS", "5")):
                export.cleanup(store, settings)
                last_cleanup = time.monotonic()
        except Exception:  # noqa: BLE001 - a database hiccup must not end the runner
            log.exception("job runner iteration failed")
            worked = False
        if time.monotonic() - last_seal >= seal_every:
            last_seal = time.monotonic()
            try:
                if audit.seal(store.engine, audit_key, anchor=anchor or audit.anchor_of(head, checkpoints), head_file=head):
                    anchor = audit.sealed_head(store.engine)
                if time.monotonic() - last_checkpoint >= checkpoint_every:
                    audit.checkpoint(store.engine, checkpoints)  # writes only when the head moved
                    last_checkpoint = time.monotonic()
            except Exception:  # noqa: BLE001 - logged every round until an operator looks
                log.exception("audit sealing failed")
        if not worked:
            time.sleep(float(os.environ.get("EHR_JOB_POLL_SECONDS", "1")))
    if relay is not None:
        relay.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
