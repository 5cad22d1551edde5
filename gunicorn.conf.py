"""gunicorn settings. Override with GUNICORN_CMD_ARGS or EHR_BIND / EHR_WORKERS."""

import multiprocessing
import os

# Everything the server's processes create (the access log file, SQLite's files, exports, the job
# runner's files) is readable by the service's user only; the app also sets 0600/0700 itself.
os.umask(0o077)

bind = os.environ.get("EHR_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("EHR_WORKERS", str(multiprocessing.cpu_count() * 2 + 1)))
worker_class = os.environ.get("EHR_WORKER_CLASS", "sync")
threads = int(os.environ.get("EHR_THREADS", "1"))
keepalive = 5
timeout = 60
graceful_timeout = 30
# Access log (ehr/access_log.py, one fixed format; access_log_format is not used): time, method,
# the path WITHOUT the query string, redacted and with control characters escaped, status, size,
# duration in ms, the request id. No client address and no query string: search parameters can
# carry national IDs and names. gunicorn's own error lines go through the same redaction.
logger_class = "ehr.access_log.AccessLogger"
accesslog = os.environ.get("EHR_ACCESS_LOG", "-")
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
