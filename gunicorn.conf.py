"""gunicorn settings. Override with GUNICORN_CMD_ARGS or EHR_BIND / EHR_WORKERS."""

import multiprocessing
import os

bind = os.environ.get("EHR_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("EHR_WORKERS", str(multiprocessing.cpu_count() * 2 + 1)))
worker_class = "sync"
timeout = 60
graceful_timeout = 30
# Access log: method, path WITHOUT the query string (%(U)s), status, size, duration in ms.
# No client address and no query string: search parameters can carry national IDs and names.
accesslog = os.environ.get("EHR_ACCESS_LOG", "-")
access_log_format = '%(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s'
errorlog = "-"
loglevel = os.environ.get("EHR_GUNICORN_LOG_LEVEL", "info")
