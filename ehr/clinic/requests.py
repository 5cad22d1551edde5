"""The facility admin's queue of patients' correction and deletion requests, with deadlines."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from ehr.auth.current import login_required
from ehr.clinic import bp, common
from ehr.fhir.outcomes import FhirError
from ehr.services import data_requests


def _page(error: str | None = None, status: int = 200) -> tuple[str, int]:
    queue = data_requests.queue(common.store(), common.ctx())
    rows = [{"task": t, "patient_id": ((t.get("for") or {}).get("reference") or "/").split("/", 1)[1],
             "kind": ((t.get("code") or {}).get("coding") or [{}])[0].get("code"),
             "deadline": ((t.get("restriction") or {}).get("period") or {}).get("end")} for t in queue]
    return render_template("clinic/requests.html", rows=rows, error=error, common=common), status


@bp.get("/requests")
@login_required(kind="staff", roles=("admin",))
def requests_queue() -> tuple[str, int]:
    return _page()


@bp.post("/requests/<task_id>")
@login_required(kind="staff", roles=("admin",))
def answer_request(task_id: str) -> Response | tuple[str, int]:
    accept = request.form.get("decision") == "accept"
    try:
        data_requests.answer(common.store(), common.ctx(), task_id, accept, request.form.get("reason", ""))
    except FhirError as exc:
        if exc.status == 409:
            return _page(_("Không thể xóa: hồ sơ bệnh án phải được lưu trữ trong thời hạn luật định. Hãy từ chối và nêu lý do."), 409)
        return _page(_("Nêu lý do trả lời (ít nhất 5 ký tự)."), 422)
    return redirect(url_for("clinic.requests_queue"))
