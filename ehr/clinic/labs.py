"""Lab orders and results of a visit: the order form (the catalogue's tests) and the result entry
for the pending orders, with the catalogue's unit and reference range. Doctors order and enter
results; nurses and others see the pending orders (the policy keeps ServiceRequest and
DiagnosticReport writes to doctors)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from flask import redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from ehr.auth import clock
from ehr.auth.current import login_required
from ehr.clinic import bp, common
from ehr.fhir import labs as lab_fhir
from ehr.fhir.outcomes import FhirError
from ehr.healthbook.common import Fmt
from ehr.services import catalogue, labs, policy


def _page(encounter_id: str, values: dict[str, Any], errors: dict[str, list[str]], status: int = 200) -> tuple[str, int]:
    store, ctx = common.store(), common.ctx()
    doctor = ctx.role == "doctor" and policy.may(ctx, "create", "ServiceRequest")
    q = (request.args.get("q") or "").strip()[:100]
    tests = catalogue.search(store, "labs", q, limit=50) if doctor and q else []
    return render_template("clinic/labs.html", encounter_id=encounter_id, tests=tests, pending=labs.pending(store, ctx, encounter_id),
                           doctor=doctor, q=q, values=values, errors=errors, token=values.get("token") or uuid.uuid4().hex,
                           common=common), status


def _range(test: lab_fhir.Test) -> str:
    low, high = test.low, test.high
    if low is not None and high is not None:
        return f"{Fmt.num(low)}–{Fmt.num(high)}"
    if high is not None:
        return f"< {Fmt.num(high)}"
    return f"> {Fmt.num(low)}" if low is not None else ""


@bp.route("/visits/<encounter_id>/labs", methods=["GET", "POST"])
@login_required(kind="staff", roles=common.STAFF)
def labs_page(encounter_id: str) -> Response | str | tuple[str, int]:
    store, ctx = common.store(), common.ctx()
    try:
        if request.method == "GET":
            return _page(encounter_id, {}, {})
        if ctx.role != "doctor":
            return _page(encounter_id, {}, {"form": [_("Chỉ bác sĩ chỉ định và nhập kết quả xét nghiệm.")]}, 403)
        form = request.form
        if form.get("action") == "order":
            codes = form.getlist("code")
            if not codes:
                return _page(encounter_id, dict(form), {"code": [_("Xét nghiệm: chọn ít nhất một xét nghiệm.")]}, 422)
            try:
                labs.order(store, ctx, encounter_id, codes, form.get("token") or uuid.uuid4().hex, now=clock.now())
            except FhirError as exc:
                if exc.status != 422:
                    raise
                return _page(encounter_id, dict(form), {"code": [_("Xét nghiệm: mã không có trong danh mục.")]}, 422)
            return redirect(url_for("clinic.labs_page", encounter_id=encounter_id))
        return _results(encounter_id, form)
    except FhirError as exc:
        return render_template("clinic/closed.html", patient_id=None), 409 if exc.status == 409 else 404


def _results(encounter_id: str, form: Any) -> Response | tuple[str, int]:
    store, ctx = common.store(), common.ctx()
    values: dict[str, Decimal] = {}
    errors: dict[str, list[str]] = {}
    for o in labs.pending(store, ctx, encounter_id):
        name = f"value-{o.request['id']}"
        text = (form.get(name) or "").strip()
        if not text:
            continue
        try:
            values[o.request["id"]] = lab_fhir.number(text)
        except ValueError:
            errors[name] = [_("%(test)s: nhập một số (ví dụ 7,8).", test=o.test.coding.get("display", ""))]
    if not errors and not values:
        errors["results"] = [_("Kết quả: nhập ít nhất một giá trị.")]
    if errors:
        return _page(encounter_id, dict(form), errors, 422)
    labs.record_results(store, ctx, encounter_id, values, now=clock.now())
    return redirect(url_for("clinic.visit", encounter_id=encounter_id))


@bp.app_template_global("lab_range")
def lab_range(test: lab_fhir.Test) -> str:
    return _range(test)
