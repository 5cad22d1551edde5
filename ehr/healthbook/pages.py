"""The record pages: overview, the four groups of QĐ 31 (administrative information, history,
visits with their treatment summary), charts, vaccinations, downloads and the emergency card."""

from __future__ import annotations

from typing import Any

from flask import Response, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ehr.api.http import base_url
from ehr.auth import clock
from ehr.auth.current import login_required
from ehr.fhir import healthbook as hb
from ehr.healthbook import bp, common, trends
from ehr.services import healthbook


def _attachment(body: str | bytes, filename: str, mimetype: str) -> Response:
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": healthbook.content_disposition(filename)})


@bp.get("/")
@login_required(kind="patient")
def index() -> Response:
    return redirect(url_for("healthbook.overview", patient_id=common.ctx().on_behalf_of))  # type: ignore[return-value]


@bp.get("/<patient_id>/")
@login_required(kind="patient")
def overview(patient_id: str) -> str:
    book = healthbook.book(common.store(), common.ctx(), patient_id)
    return render_template("healthbook/overview.html", book=book, **common.frame(patient_id, book.name))


@bp.get("/<patient_id>/administrative")
@login_required(kind="patient")
def administrative(patient_id: str) -> str:
    book = healthbook.book(common.store(), common.ctx(), patient_id)
    return render_template("healthbook/administrative.html", book=book, a=book.admin, **common.frame(patient_id, book.name))


@bp.get("/<patient_id>/history")
@login_required(kind="patient")
def history(patient_id: str) -> str:
    book = healthbook.book(common.store(), common.ctx(), patient_id)
    return render_template("healthbook/history.html", book=book, **common.frame(patient_id, book.name))


@bp.get("/<patient_id>/visits")
@login_required(kind="patient")
def visits(patient_id: str) -> str:
    book = healthbook.book(common.store(), common.ctx(), patient_id)
    return render_template("healthbook/visits.html", book=book, **common.frame(patient_id, book.name))


@bp.get("/<patient_id>/visits/<encounter_id>")
@login_required(kind="patient")
def visit(patient_id: str, encounter_id: str) -> str:
    book, one = healthbook.visit(common.store(), common.ctx(), patient_id, encounter_id)
    return render_template("healthbook/visit.html", book=book, v=one, **common.frame(patient_id, book.name))


def summary_title(one: hb.Visit) -> str:
    return _("Tom-tat-dot-kham-%(day)s", day=hb.iso_day(one.start) or "")


@bp.get("/<patient_id>/visits/<encounter_id>/summary")
@login_required(kind="patient")
def summary(patient_id: str, encounter_id: str) -> str | Response:
    """The visit summary, print-ready (its title names the PDF a browser saves); `?download=1`
    sends the same page as a file that opens offline."""
    book, one = healthbook.visit(common.store(), common.ctx(), patient_id, encounter_id)
    title = summary_title(one)
    page = render_template("healthbook/summary.html", book=book, v=one, title=title, pid=patient_id, printed=clock.local_now())
    if request.args.get("download"):
        return _attachment(page, f"{title}.html", "text/html")
    return page


@bp.get("/<patient_id>/charts", endpoint="charts")
@login_required(kind="patient")
def charts_page(patient_id: str) -> str:
    book = healthbook.book(common.store(), common.ctx(), patient_id)
    drawn = trends.drawn(book.series)
    return render_template("healthbook/charts.html", book=book, drawn=drawn, **common.frame(patient_id, book.name))


@bp.get("/<patient_id>/vaccinations")
@login_required(kind="patient")
def vaccinations(patient_id: str) -> str:
    book = healthbook.book(common.store(), common.ctx(), patient_id)
    most = max((d.dose or 0 for r in book.vaccines for d in r.doses), default=0)
    return render_template("healthbook/vaccinations.html", book=book, most=most, **common.frame(patient_id, book.name))


@bp.get("/<patient_id>/download")
@login_required(kind="patient")
def download(patient_id: str) -> str:
    book = healthbook.book(common.store(), common.ctx(), patient_id)
    return render_template("healthbook/download.html", book=book, summary_title=summary_title, **common.frame(patient_id, book.name))


@bp.get("/<patient_id>/download/record.json")
@login_required(kind="patient")
def download_record(patient_id: str) -> Response:
    """The whole record as a FHIR Bundle (JSON), named in Vietnamese."""
    found = healthbook.download(common.store(), common.ctx(), patient_id, base_url(), _("Sổ-sức-khỏe-điện-tử"))
    return Response(found.body, mimetype="application/fhir+json", headers={"Content-Disposition": found.content_disposition})


@bp.get("/<patient_id>/emergency-card")
@login_required(kind="patient")
def emergency_card(patient_id: str) -> str | Response:
    """One page for emergencies: self-contained (inline style, no other file), so it keeps
    working offline once saved or printed."""
    book = healthbook.book(common.store(), common.ctx(), patient_id)
    page = render_template("healthbook/emergency_card.html", book=book, pid=patient_id, printed=clock.local_now())
    if request.args.get("download"):
        return _attachment(page, _("Thẻ-cấp-cứu") + ".html", "text/html")
    return page
