"""Today's list of the facility (Vietnam time): the queue by number, in four groups (waiting, in
progress, finished, cancelled) with counts and waiting times, and the desk's and the rooms' actions
(call the next patient, start, finish, cancel) as POST forms.

`?part=list` answers the list alone (the same template's `queue_list` block): the page's script
(`static/queue-refresh.js`) swaps it in every 20 s; without JavaScript the page works the same,
refreshed by each action's redirect.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from jinja2 import Template
from werkzeug.wrappers import Response

from ehr.auth import clock
from ehr.auth.current import login_required
from ehr.clinic import bp, common
from ehr.fhir.outcomes import FhirError
from ehr.services import queue

GROUPS = (("waiting", _l("Đang chờ")), ("in-progress", _l("Đang khám")), ("finished", _l("Đã xong")), ("cancelled", _l("Đã hủy")))
STATUS_NAMES = {
    "planned": _l("Đã hẹn"), "arrived": _l("Chờ gọi"), "triaged": _l("Đã gọi"), "in-progress": _l("Đang khám"),
    "onleave": _l("Tạm rời phòng khám"), "finished": _l("Đã xong"), "cancelled": _l("Đã hủy"), "entered-in-error": _l("Nhập nhầm"),
    "unknown": _l("Không rõ"),
}
REFUSED = {
    "role": _l("Vai trò của bạn không làm được việc này: lễ tân tiếp nhận, gọi bệnh nhân và hủy lượt; bác sĩ và điều dưỡng gọi "
               "bệnh nhân, bắt đầu và kết thúc khám."),
    "not-found": _l("Không tìm thấy lượt khám này trong danh sách của cơ sở."),
    "signed": _l("Lượt khám đã được ký nên không thay đổi được nữa."),
    "status": _l("Lượt khám không còn ở trạng thái cho phép việc này (có thể vừa được cập nhật ở nơi khác). Danh sách dưới đây là mới nhất."),
    "changed": _l("Lượt khám vừa được người khác cập nhật. Danh sách dưới đây là mới nhất: xem lại rồi thao tác lại nếu cần."),
}


def _fragment() -> Template:
    """The list part alone: a parent template with nothing but the list's block (the page
    extends `layout` when it is given)."""
    return current_app.jinja_env.from_string("{% block queue_list %}{% endblock %}")


def _who(row: queue.Row | None) -> str:
    if row is None:
        return ""
    return _("số %(n)s", n=row.number) if row.number else row.patient_name


def _done_message(rows: list[queue.Row]) -> str | None:
    """The result of the action that redirected here (`done` and the Encounter id: no names in URLs)."""
    done, encounter_id = request.args.get("done", ""), request.args.get("e", "")
    row = next((r for r in rows if r.encounter_id == encounter_id), None)
    if done == "none":
        return _("Không còn bệnh nhân nào đang chờ.")
    if row is None:
        return None
    messages = {
        "called": _("Đã gọi bệnh nhân %(who)s: %(name)s.", who=_who(row), name=row.patient_name),
        "started": _("Đã bắt đầu khám bệnh nhân %(who)s.", who=_who(row)),
        "finished": _("Đã kết thúc lượt khám %(who)s.", who=_who(row)),
        "cancelled": _("Đã hủy lượt %(who)s.", who=_who(row)),
    }
    return messages.get(done)


def _arrival(rows: list[queue.Row]) -> tuple[queue.Row | None, str | None]:
    """The patient just checked in (`arrived` = their id): their row and the announcement."""
    patient_id = request.args.get("arrived", "")
    if not patient_id:
        return None, None
    if not any(r.patient_id == patient_id for r in rows):
        return None, _("Đã tiếp nhận bệnh nhân nhưng chưa xếp được vào hàng đợi hôm nay: tiếp nhận lại, hoặc báo quản trị viên nếu vẫn lỗi.")
    mine = [r for r in rows if r.patient_id == patient_id and r.group in ("waiting", "in-progress")]
    if not mine:
        return None, None  # the visit is over already (an old link)
    row = mine[0]
    if row.number is None:
        return row, _("Đã tiếp nhận %(name)s: bệnh nhân đang có lượt khám hôm nay.", name=row.patient_name)
    return row, _("Đã tiếp nhận %(name)s: số thứ tự %(n)s.", name=row.patient_name, n=row.number)


def _page(message: str | None = None, error: str | None = None, status: int = 200) -> tuple[str, int]:
    ctx = common.ctx()
    day = clock.today()
    rows = queue.today(common.store(), ctx, day, clock.now())
    groups: dict[str, list[queue.Row]] = {key: [] for key, _title in GROUPS}
    for row in rows:
        groups[row.group].append(row)
    arrived, announcement = _arrival(rows)
    values: dict[str, Any] = dict(
        groups=groups, group_titles=GROUPS, statuses=STATUS_NAMES, day=day, common=common,
        highlight=arrived.encounter_id if arrived else None, announcement=announcement,
        message=message or _done_message(rows), error=error,
        can_call=ctx.role in queue.CALL_ROLES, can_visit=ctx.role in queue.VISIT_ROLES, can_cancel=ctx.role in queue.CANCEL_ROLES,
        refresh_url=url_for("clinic.today", part="list", arrived=request.args.get("arrived") or None),
    )
    if request.args.get("part") == "list":
        values["layout"] = _fragment()
    return render_template("clinic/today.html", **values), status


@bp.get("/")
@login_required(kind="staff", roles=common.STAFF)
def today() -> tuple[str, int]:
    return _page()


def _refused(exc: FhirError) -> tuple[str, int]:
    fallback = {403: "role", 404: "not-found", 410: "not-found", 409: "changed", 412: "changed"}
    reason = exc.reason if isinstance(exc, queue.QueueError) else fallback.get(exc.status, "status")
    return _page(error=str(REFUSED.get(reason, REFUSED["status"])), status=exc.status)


def _version() -> int | None:
    value = request.form.get("version", "")
    return int(value) if value.isdigit() else None


@bp.post("/queue/call")
@login_required(kind="staff", roles=common.STAFF)
def call_next() -> Response | tuple[str, int]:
    try:
        called = queue.call_next(common.store(), common.ctx(), clock.now())
    except FhirError as exc:
        return _refused(exc)
    if called is None:
        return redirect(url_for("clinic.today", done="none"))
    return redirect(url_for("clinic.today", done="called", e=called))


@bp.post("/queue/<encounter_id>/start")
@login_required(kind="staff", roles=common.STAFF)
def start(encounter_id: str) -> Response | tuple[str, int]:
    try:
        queue.start(common.store(), common.ctx(), encounter_id, _version(), clock.now())
    except FhirError as exc:
        return _refused(exc)
    patient_id = request.form.get("patient", "")
    if patient_id:
        # On to the visit form, which records into this Encounter.
        return redirect(url_for("clinic.new_visit", patient_id=patient_id, encounter=encounter_id))
    return redirect(url_for("clinic.today", done="started", e=encounter_id))


@bp.post("/queue/<encounter_id>/finish")
@login_required(kind="staff", roles=common.STAFF)
def finish(encounter_id: str) -> Response | tuple[str, int]:
    try:
        queue.finish(common.store(), common.ctx(), encounter_id, _version(), clock.now())
    except FhirError as exc:
        return _refused(exc)
    return redirect(url_for("clinic.today", done="finished", e=encounter_id))


@bp.post("/queue/<encounter_id>/cancel")
@login_required(kind="staff", roles=common.STAFF)
def cancel(encounter_id: str) -> Response | tuple[str, int]:
    try:
        queue.cancel(common.store(), common.ctx(), encounter_id, _version(), clock.now())
    except FhirError as exc:
        return _refused(exc)
    return redirect(url_for("clinic.today", done="cancelled", e=encounter_id))
