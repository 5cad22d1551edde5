"""gunicorn settings. Override with GUNICORN_CMD_ARGS or EHR_BIND / EHR_WORKERS."""

import multiprocessing
import os

bind = os.environ.get("EHR_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("EHR_WORKERS", str(multiprocessing.cpu_count() * 2 + 1)))
worker_class = os.environ.get("EHR_WORKER_CLASS", "sync")
threads = int(os.environ.get("EHR_THREADS", "1"))
keepalive = 5
timeout = 60
graceful_timeout = 30
# Access log: method, path WITHOUT the query string (%(U)s), status, size, duration in ms.
# No client address and no query string: search parameters can carry national IDs and names.
accesslog = os.environ.get("EHR_ACCESS_LOG", "-")
access_log_format = '%(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s'
errorlog = "-"
loglevel = os.environ.get("EHR_GUNICORN_LOG_LEVEL", "info")


# The Bulk Data job runner: a process of its own beside the workers (EHR_JOB_RUNNER=0 disables it,
# for example when a separate host runs `python -m ehr.jobs`).
def when_ready(server):  # noqa: ANN001, ANN201 - gunicorn hook signature
    if os.environ.get("EHR_JOB_RUNNER", "1") == "1":
        import subprocess
        import sys

        server.ehr_job_runner = subprocess.Popen([sys.executable, "-m", "ehr.jobs"])


def on_exit(server):  # noqa: ANN001, ANN201
    runner = getattr(server, "ehr_job_runner", None)
    if runner is not None:
        runner.terminate()
        try:
            runner.wait(timeout=10)
        except Exception:  # noqa: BLE001
            runner.kill()
