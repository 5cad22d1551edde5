"""Lab orders and results: ordered from the catalogue, entered with a decimal comma, flagged
against the catalogue's reference range, reported, and charted in the chart and the health book."""

from __future__ import annotations

import re
from decimal import Decimal

from clinic_helpers import post_form
from test_corrections import _all, _register, _visit

from ehr.fhir import labs as lab_fhir
from ehr.services import catalogue, healthbook, policy


def _order(browser, eid, *codes):
    page = browser.get(f"/clinic/visits/{eid}/labs?q=glu").get_data(as_text=True)
    assert 'value="GLU"' in page  # the picker lists the catalogue's tests
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    response = browser.post(f"/clinic/visits/{eid}/labs", {"action": "order", "token": token, "code": list(codes),
                                                           "csrf_token": re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]


def test_a_result_out_of_range_is_flagged_reported_and_charted(signed_in, store):
    catalogue.load_samples(store)
    browser = signed_in("doctor")
    pid = _register(browser)
    eid = _visit(browser, pid, systolic="130", diastolic="85")
    _order(browser, eid, "GLU", "HBA1C")
    requests = _all(store, "ServiceRequest", pid)
    assert sorted(r["code"]["coding"][0]["code"] for r in requests) == ["GLU", "HBA1C"]
    glucose = next(r for r in requests if r["code"]["coding"][0]["code"] == "GLU")
    assert glucose["status"] == "active" and glucose["intent"] == "order" and glucose["encounter"]["reference"] == f"Encounter/{eid}"
    assert {"system": "http://loinc.org", "code": "14749-6"} in glucose["code"]["coding"]
    assert glucose["requester"]["display"] == "Nguyễn Văn doctor"

    form = browser.get(f"/clinic/visits/{eid}/labs").get_data(as_text=True)
    assert "mmol/L" in form and "3,9–6,4" in form
    refused = post_form(browser, f"/clinic/visits/{eid}/labs", {"action": "results", f"value-{glucose['id']}": "bảy"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "Glucose máu (lúc đói): nhập một số" in html and 'value="bảy"' in html
    assert _all(store, "DiagnosticReport", pid) == []

    saved = post_form(browser, f"/clinic/visits/{eid}/labs", {"action": "results", f"value-{glucose['id']}": "7,8"})
    assert saved.status_code == 302
    [obs] = [o for o in _all(store, "Observation", pid) if o.get("basedOn")]
    assert obs["valueQuantity"] == {"value": Decimal("7.8"), "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}
    assert obs["referenceRange"][0]["low"]["value"] == Decimal("3.9") and obs["referenceRange"][0]["high"]["value"] == Decimal("6.4")
    assert lab_fhir.interpretation(obs) == "H" and obs["basedOn"] == [{"reference": f"ServiceRequest/{glucose['id']}"}]
    [report] = _all(store, "DiagnosticReport", pid)
    assert report["result"] == [{"reference": f"Observation/{obs['id']}"}] and report["category"][0]["coding"][0]["code"] == "LAB"
    states = {r["code"]["coding"][0]["code"]: r["status"] for r in _all(store, "ServiceRequest", pid)}
    assert states == {"GLU": "completed", "HBA1C": "active"}  # HbA1c still pending
    assert "HbA1c" in browser.get(f"/clinic/visits/{eid}/labs").get_data(as_text=True)

    visit = browser.get(f"/clinic/visits/{eid}").get_data(as_text=True)
    assert "Cao" in re.search(r"Glucose máu[^<]*<strong[^>]*>([^<]+)", visit).group(1)
    chart = browser.get(f"/clinic/patients/{pid}").get_data(as_text=True)
    figure = re.search(r'<figure class="trend" data-series="14749-6">(.*?)</figure>', chart, re.S)
    assert figure and "7,8" in figure.group(1)
    assert 'id="lab-results"' in chart

    me = policy.patient_context("acct-me", pid)
    assert "14749-6" not in [s.key for s in healthbook.book(store, me, pid).series]  # not before the visit is signed
    assert post_form(browser, f"/clinic/visits/{eid}/sign", {}, page=f"/clinic/visits/{eid}").status_code == 302
    [series] = [s for s in healthbook.book(store, me, pid).series if s.key == "14749-6"]
    assert [p.value for p in series.lines[0].points] == [Decimal("7.8")] and series.ranges == ((Decimal("3.9"), Decimal("6.4")),)


def test_results_for_a_signed_visit_show_in_the_book(signed_in, store):
    catalogue.load_samples(store)
    browser = signed_in("doctor")
    pid = _register(browser)
    eid = _visit(browser, pid, systolic="120", diastolic="80")
    _order(browser, eid, "GLU")
    assert post_form(browser, f"/clinic/visits/{eid}/sign", {}, page=f"/clinic/visits/{eid}").status_code == 302
    [request] = _all(store, "ServiceRequest", pid)
    saved = post_form(browser, f"/clinic/visits/{eid}/labs", {"action": "results", f"value-{request['id']}": "3.1"})
    assert saved.status_code == 302
    assert "Thấp" in browser.get(f"/clinic/visits/{eid}").get_data(as_text=True)
    assert "Không có chỉ định nào chờ kết quả" in browser.get(f"/clinic/visits/{eid}/labs").get_data(as_text=True)
    me = policy.patient_context("acct-me", pid)
    assert [s.key for s in healthbook.book(store, me, pid).series if s.key == "14749-6"] == ["14749-6"]


def test_a_nurse_sees_orders_but_does_not_order(signed_in, store):
    catalogue.load_samples(store)
    browser = signed_in("nurse")
    pid = _register(browser)
    eid = _visit(browser, pid, systolic="120", diastolic="80")
    page = browser.get(f"/clinic/visits/{eid}/labs")
    assert page.status_code == 200 and 'name="code"' not in page.get_data(as_text=True)
    refused = post_form(browser, f"/clinic/visits/{eid}/labs", {"action": "order", "code": "GLU"})
    assert refused.status_code == 403 and _all(store, "ServiceRequest", pid) == []
