"""The catalogue pickers' JSON endpoint (`GET /clinic/catalogue/<kind>?q=`), for signed-in staff."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from ehr.services import catalogue

SAMPLES = Path(catalogue.__file__).resolve().parents[1] / "data" / "catalogues"


@pytest.fixture
def lists(store: Any) -> None:
    for kind in catalogue.KINDS:
        assert catalogue.import_file(store, kind, SAMPLES / f"{kind}.csv").ok


def test_drug_picker_finds_amoxicilin_without_accents(lists: None, signed_in: Callable[[str], Any]) -> None:
    browser = signed_in("doctor")
    response = browser.get("/clinic/catalogue/drugs?q=amoxicilin%20500")
    assert response.status_code == 200 and response.mimetype == "application/json"
    body = response.get_json()
    assert body["version"] and body["system"] == catalogue.SYSTEMS["drugs"]
    first = body["items"][0]
    assert first == {"code": "TH0001", "name": "Amoxicilin 500mg", "display": "Amoxicilin 500mg", "ingredient": "Amoxicilin",
                     "ingredient_code": "40.158", "strength": "500mg", "form": "Viên nang cứng", "route": "Uống", "unit": "Viên",
                     "registration": "VD-90001-21", "bhyt": True, "bhyt_ratio": 100, "price": "1050"}


def test_lab_and_service_pickers(lists: None, signed_in: Callable[[str], Any]) -> None:
    browser = signed_in("nurse")
    labs = browser.get("/clinic/catalogue/labs?q=hemoglobin").get_json()["items"]
    assert [(i["code"], i["unit"], i["low"], i["high"], i["loinc"]) for i in labs] == [("HGB", "g/L", "120", "160", "718-7")]
    services = browser.get("/clinic/catalogue/services?q=kham nhi&limit=3").get_json()["items"]
    assert services[0]["code"] == "KB.003" and services[0]["price"] == "34500"
    assert browser.get("/clinic/catalogue/services?q=").get_json()["items"] == []
    assert browser.get("/clinic/catalogue/icd10?q=a").status_code == 404


def test_the_picker_is_for_staff_only(lists: None, client: Any) -> None:
    response = client.get("/clinic/catalogue/drugs?q=amox")
    assert response.status_code in (302, 401, 403)
    assert b"Amoxicilin" not in response.data
