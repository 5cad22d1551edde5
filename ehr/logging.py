"""Logging without personal health data.

Allowed in log lines: request id, method, the route rule (never the URL or query string), status,
duration, resource type, opaque ids, outcome codes, exception class names. `PhiRedactionFilter` is a
safety net that masks digit runs of national-ID/insurance/phone length and e-mail addresses (not
inside the `rid=` and `incident=` tokens); the real guarantee is the log-capture tests. gunicorn's
access and error logs go through the same `redact` (ehr/access_log.py).
"""

from __future__ import annotations

import logging
import logging.config
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request

_REDACT = [
    (re.compile(r"(?<![0-9A-Za-z])[A-Z]{2}\d{13}(?![0-9A-Za-z])"), "[redacted-id]"),  # legacy BHYT card code
    (re.compile(r"(?<!\d)\+?\d[\d .-]{7,16}\d(?!\d)"), "[redacted-number]"),  # CCCD, CMND, BHXH, phones
    (re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"), "[redacted-email]"),
]
_REQUEST_ID = re.compile(r"^[A-Za-z0-9\-]{8,64}$")
# Correlation ids (`rid=` request id, `incident=` incident id) pass unchanged: the digit-run
# pattern would otherwise cut a hex or UUID id apart. A client's request id that is a bare ID-like
# number is not accepted (`request_id`), so this exemption cannot carry one into the log.
_KEPT = re.compile(r"(?<![0-9A-Za-z_-])(?:rid|incident)=[A-Za-z0-9-]{8,64}(?![0-9A-Za-z_-])")

log = logging.getLogger("ehr.request")


def _redact_free_text(text: str) -> str:
    for pattern, replacement in _REDACT:
        text = pattern.sub(replacement, text)
    return text


def redact(text: str, keep_ids: bool = True) -> str:
    """Mask ID-like numbers and e-mail addresses everywhere but in `rid=` / `incident=` tokens
    (everywhere, with `keep_ids=False`: text a client wrote, such as a request path)."""
    if not keep_ids:
        return _redact_free_text(text)
    parts, position = [], 0
    for kept in _KEPT.finditer(text):
        parts.append(_redact_free_text(text[position : kept.start()]))
        parts.append(kept.group())
        position = kept.end()
    parts.append(_redact_free_text(text[position:]))
    return "".join(parts)


def request_id(supplied: str) -> str:
    """The request id: the client's `X-Request-ID` when it is 8-64 letters, digits and hyphens
    and not a bare ID-like number (that would put the number into every log line unredacted),
    otherwise a fresh one."""
    if _REQUEST_ID.match(supplied) and not (supplied.replace("-", "").isdigit() and _redact_free_text(supplied) != supplied):
        return supplied
    return uuid.uuid4().hex


class PhiRedactionFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info:
            # Exception messages can quote data (SQL parameters, pydantic inputs): keep the class and
            # the frames, drop the message.
            exc_type, _exc, tb = record.exc_info
            import traceback

            frames = "".join(traceback.format_list(traceback.extract_tb(tb)))
            record.msg = f"{record.msg}\n{frames}{exc_type.__name__ if exc_type else 'Exception'} (message withheld)"
            record.exc_info = None
            record.exc_text = None
        return True


def configure_logging(level: str = "INFO") -> None:
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "filters": {"phi": {"()": PhiRedactionFilter}},
            "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
            "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["phi"]}},
            "root": {"level": level, "handlers": ["stderr"]},
            "loggers": {"werkzeug": {"level": "WARNING"}},
        }
    )


def install_request_logging(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        g.request_id = request_id(request.headers.get("X-Request-ID", ""))

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        rule = request.url_rule.rule if request.url_rule else "<unmatched>"
        elapsed = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        log.info("%s %s %s %.1fms rid=%s", request.method, rule, response.status_code, elapsed, g.get("request_id"))
        return response


def incident(logger: logging.Logger, exc: BaseException, **fields: Any) -> str:
    """Log an unexpected failure under a fresh incident id and return the id."""
    incident_id = uuid.uuid4().hex[:16]
    rule = request.url_rule.rule if request and request.url_rule else "<unmatched>"
    detail = " ".join(f"{k}={v}" for k, v in fields.items())
    logger.error("incident=%s %s rule=%s rid=%s %s", incident_id, type(exc).__name__, rule, g.get("request_id"), detail, exc_info=exc)
    return incident_id
