"""The patient's health book (Sổ sức khỏe điện tử): server-rendered pages for a signed-in patient
to read their own record (and the records of those they legally represent), see who opened it,
share it with a hospital, download it and ask for corrections.

Pages only call services (`ehr.services.healthbook`, `healthbook_privacy`, `directory`,
`data_requests`); the record is read with the patient's own access context, so the policy and the
audit trail are those of the FHIR API. Another patient's book answers 404 like a missing page.
Nothing is cached by browsers or proxies (`Cache-Control: no-store`).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, render_template

from ehr.fhir.outcomes import FhirError

bp = Blueprint("healthbook", __name__, url_prefix="/healthbook")


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


@bp.errorhandler(FhirError)
def _refused(exc: FhirError) -> tuple[str, int]:
    # Not there, not visible, not permitted, malformed: one page, so nothing is learned about others' records.
    if exc.status >= 500:
        return render_template("error.html", status=exc.status, name="Service Unavailable"), exc.status
    return render_template("healthbook/not_found.html"), 404


@bp.context_processor
def _helpers() -> dict[str, Any]:
    from ehr.healthbook.common import Fmt

    return {"f": Fmt}


from ehr.healthbook import pages, privacy  # noqa: E402,F401  (registers the routes)
