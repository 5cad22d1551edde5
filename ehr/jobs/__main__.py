"""The job runner: claims Bulk Data export jobs from the database and runs them; deletes expired
exports. Started by the gunicorn master (gunicorn.conf.py) and stops when its parent goes away, so
a killed server never leaves an orphan behind; any runner resumes what a dead one left."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time

from ehr import create_app
from ehr.services import export

log = logging.getLogger("ehr.jobs")


def main() -> int:
    app = create_app()
    store = app.extensions["ehr.store"]
    settings = app.extensions["ehr.export"]
    parent = os.getppid()
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    log.info("job runner started (parent %s)", parent)
    last_cleanup = 0.0
    while not stopping and os.getppid() == parent:
        try:
            worked = export.run_pending(store, settings)
            if time.monotonic() - last_cleanup > 60:
                export.cleanup(store, settings)
                last_cleanup = time.monotonic()
        except Exception:  # noqa: BLE001 - a database hiccup must not end the runner
            log.exception("job runner iteration failed")
            worked = False
        if not worked:
            time.sleep(float(os.environ.get("EHR_JOB_POLL_SECONDS", "1")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
