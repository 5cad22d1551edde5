"""gunicorn's logger (`logger_class` in gunicorn.conf.py): the access log and gunicorn's own error
log through the same redaction as the application's log (ehr.logging).

Access lines have one fixed format (gunicorn's `access_log_format` is not used, so no setting can
add the client address, the query string, the Referer or other headers):

    [10/Oct/2025:13:55:36 +0700] "GET /fhir/Patient/[redacted-number]" 404 173 3ms rid=<request id>

- the path only (PATH_INFO, never the query string), passed through `ehr.logging.redact` (with
  no exemption: a `rid=` written into the path is redacted like the rest), then
  with backslash, double quote, C0/DEL/C1 controls and other unprintable characters written as
  `\\xNN` (`\\uNNNN` above U+00FF): a CRLF in a path cannot start a forged line;
- no client address (nor X-Forwarded-For), no user, no user agent;
- `rid=` the X-Request-ID the application answered with, intact (`-` when there was none).

Error-log lines (gunicorn's own messages, e.g. "Invalid request from ip=...") lose the address and
any query string, are redacted and escaped the same way; tracebacks keep their frames only.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from gunicorn.glogging import Logger

from ehr.logging import _REQUEST_ID, PhiRedactionFilter, redact

_ADDRESS = re.compile(r"\bip=\S+?(?=:?(?:\s|$))")
_QUERY = re.compile(r"(?<=\S)\?[^\s\"]*")


def escape(text: str) -> str:
    """Backslash, quote and every unprintable character as an escape; one line, always."""
    out = []
    for ch in text:
        if ch == "\\" or ch == '"' or not ch.isprintable():
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


def log_path(path_info: str) -> str:
    """The request path as the access log writes it (WSGI gives it as Latin-1 of the raw bytes)."""
    try:
        path = path_info.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        path = path_info
    return escape(redact(path, keep_ids=False))  # a path is the client's text: a "rid=" in it is not exempt


def _request_id(resp: Any) -> str:
    for name, value in getattr(resp, "headers", None) or ():
        if str(name).lower() == "x-request-id":
            return value if _REQUEST_ID.match(value) else "-"
    return "-"


# The master's report of its own bind addresses: configuration, not request data (kept readable).
_OWN_ADDRESSES = ("Listening at: %s", "Listening at: %s (%s)")


class _ErrorLogFilter(PhiRedactionFilter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg in _OWN_ADDRESSES:
            return True
        message = _QUERY.sub("?[query withheld]", _ADDRESS.sub("ip=-", record.getMessage()))
        record.msg, record.args = escape(message), None
        return super().filter(record)


class AccessLogger(Logger):
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        if not any(isinstance(f, _ErrorLogFilter) for f in self.error_log.filters):
            self.error_log.addFilter(_ErrorLogFilter())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        try:
            status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
            sent = getattr(resp, "sent", None)
            millis = request_time.seconds * 1000 + request_time.microseconds // 1000
            self.access_log.info(
                '%s "%s %s" %s %s %sms rid=%s', self.now(), escape(str(environ.get("REQUEST_METHOD") or "-")),
                log_path(str(environ.get("PATH_INFO") or "")), escape(str(status)), "-" if sent is None else sent, millis, _request_id(resp),
            )
        except Exception as exc:  # noqa: BLE001 - a log line must never fail a request
            self.error("access log line not written: %s", type(exc).__name__)
