"""Turn every failure under /fhir into an OperationOutcome; HTML pages get an error page."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, render_template, request
from werkzeug.exceptions import HTTPException

from ehr.api import limits
from ehr.api.http import outcome_response
from ehr.crypto.envelope import IntegrityFailure
from ehr.fhir.outcomes import FhirError, Issue
from ehr.logging import incident
from ehr.store.engine import is_statement_timeout

log = logging.getLogger("ehr.errors")

_HTTP_CODES = {400: "invalid", 404: "not-found", 405: "not-supported", 406: "not-supported", 413: "too-long", 415: "not-supported", 429: "throttled"}


def _is_api() -> bool:
    return request.path == "/fhir" or request.path.startswith("/fhir/")


def register(app: Flask) -> None:
    @app.errorhandler(FhirError)
    def _fhir_error(exc: FhirError) -> Response:
        return outcome_response(exc.issues, exc.status, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response | tuple[str, Any, dict[str, str]] | tuple[str, int]:
        status = exc.code or 500
        if limits.is_throttled(exc):
            return _throttled(limits.retry_after(exc))  # type: ignore[arg-type]
        if _is_api():
            if status == 404:
                text = "no FHIR endpoint at this path"
            elif status == 405:
                text = f"{request.method} is not supported on this endpoint"
            elif status == 413:
                text = f"the request body is larger than the limit of {app.config.get('MAX_CONTENT_LENGTH')} bytes"
            else:
                text = exc.name
            response = outcome_response([Issue(_HTTP_CODES.get(status, "processing"), text)], status)
            if status == 405 and exc.get_response().headers.get("Allow"):
                response.headers["Allow"] = exc.get_response().headers["Allow"]
            return response
        return render_template("error.html", status=status, name=exc.name), status

    @app.errorhandler(IntegrityFailure)
    def _integrity(exc: IntegrityFailure) -> Response | tuple[str, int]:
        # A ciphertext or pointer failed its check: tampering or corruption. Never return data.
        incident_id = incident(log, exc, alert="integrity")
        return _server_error(incident_id)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response | tuple[str, int]:
        if is_statement_timeout(exc):
            # The request's statement timeout (EHR_STATEMENT_TIMEOUT_MS) cut a query: too costly
            # now, not a server fault. No incident, no traceback to the client.
            log.warning("statement timeout on %s", request.endpoint)
            if _is_api():
                issue = Issue("timeout", "the request took longer than the server allows; narrow the search, "
                              "ask for fewer resources (_count, _include) or retry later")
                return outcome_response([issue], 503, {"Retry-After": "5"})
            return render_template("error.html", status=503, name="Service Unavailable"), 503
        incident_id = incident(log, exc)
        return _server_error(incident_id)

    def _throttled(retry: int) -> Response | tuple[str, int, dict[str, str]]:
        headers = {"Retry-After": str(retry)}
        if _is_api() or request.endpoint == "auth.token":  # machine clients get JSON
            return outcome_response([Issue("throttled", f"too many requests: retry after {retry} s")], 429, headers)
        return render_template("error.html", status=429, name="Too Many Requests", retry_after=retry), 429, headers

    def _server_error(incident_id: str) -> Response | tuple[str, int]:
        if _is_api():
            return outcome_response([Issue("exception", f"internal error; incident {incident_id}", severity="fatal")], 500)
        return render_template("error.html", status=500, name="Internal Server Error", incident=incident_id), 500
