"""Date search against the R4 semantics: every prefix, across year, month and day boundaries.

The oracle below restates search.html#date on [low, high) ranges independently of the SQL."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from ehr.fhir import dates
from search_helpers import ids, make

PREFIXES = ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"]


def oracle(prefix: str, s: tuple[int, int], r: tuple[int, int]) -> bool:
    (sl, sh), (rl, rh) = s, r
    inside = sl <= rl and rh <= sh
    if prefix == "eq":
        return inside
    if prefix == "ne":
        return not inside
    if prefix == "gt":
        return rh > sh
    if prefix == "lt":
        return rl < sl
    if prefix == "ge":
        return rh > sh or inside
    if prefix == "le":
        return rl < sl or inside
    if prefix == "sa":
        return rl >= sh
    if prefix == "eb":
        return rh <= sl
    return rl < sh and rh > sl  # ap, on the widened range


CLINICAL = {
    "year": "2020",
    "month": "2020-06",
    "day": "2020-06-15",
    "second": "2020-06-15T10:30:00+07:00",
    "new-year-eve": "2020-12-31T23:59:59Z",
    "before": "2019-12-31",
    "period": {"start": "2020-06-01", "end": "2020-06-30"},
    "open-period": {"start": "2021-01-01"},
}
SEARCHES = ["2020", "2020-06", "2020-06-15", "2020-06-15T10:30:00+07:00", "2021", "2019-12-31"]


def _range(value):
    return dates.period_range(value) if isinstance(value, dict) else dates.value_range(value)


@pytest.fixture
def clinical(client):
    made = {}
    for name, value in CLINICAL.items():
        field = {"effectivePeriod": value} if isinstance(value, dict) else {"effectiveDateTime": value}
        made[name] = make(client, {"resourceType": "Observation", "status": "final", "code": {"text": name}, **field})
    return made


@pytest.mark.parametrize("search", SEARCHES)
def test_clinical_dates_follow_the_spec(client, clinical, search):
    for prefix in PREFIXES:
        s_range = dates.value_range(search)
        if prefix == "ap":
            s_range = dates.approx_widen(*s_range, dates._us(datetime.now(timezone.utc)))
        expected = {clinical[n] for n, v in CLINICAL.items() if oracle(prefix, s_range, _range(v))}
        assert ids(client, "/fhir/Observation", date=f"{prefix}{search}") == expected, (prefix, search)


BIRTHS = ["1990", "1990-05", "1990-05-14", "1990-05-31", "1990-06-01", "1989-12-31", "1991-01-01", "1990-12", "1950-02-28"]
BIRTH_SEARCHES = ["1990", "1990-05", "1990-05-14", "1990-06", "1991", "1989-12-31"]


def _calendar(value: str) -> tuple[int, int]:
    y, m, d = dates.parse_calendar(value)
    return dates._calendar_range(y, m, d)


@pytest.fixture
def born(client):
    return {b: make(client, {"resourceType": "Patient", "birthDate": b}) for b in BIRTHS}


@pytest.mark.parametrize("search", BIRTH_SEARCHES)
def test_birthdate_buckets_follow_the_spec(client, born, search):
    today = date.today()
    for prefix in PREFIXES:
        s_range = _calendar(search)
        if prefix == "ap":
            widen = max(1, abs(today.toordinal() - s_range[0]) // 10)
            s_range = (s_range[0] - widen, s_range[1] + widen)
        expected = {born[b] for b in BIRTHS if oracle(prefix, s_range, _calendar(b))}
        assert ids(client, "/fhir/Patient", birthdate=f"{prefix}{search}") == expected, (prefix, search)


def test_birthdate_is_never_stored_as_a_date(client, store):
    make(client, {"resourceType": "Patient", "birthDate": "1988-07-14"})
    from sqlalchemy import text

    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM idx_date WHERE resource_type = 'Patient'")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM idx_token WHERE param = 'birthdate' AND code IS NOT NULL")).scalar() == 0


def test_last_updated_and_bad_dates(client):
    a = make(client, {"resourceType": "Patient"})
    assert ids(client, "/fhir/Patient", _lastUpdated="ge2020-01-01") == {a}
    assert ids(client, "/fhir/Patient", _lastUpdated="lt2020-01-01") == set()
    for bad in ("yesterday", "2020-13", "xx2020", "2020-02-30"):
        response = client.get("/fhir/Observation", query_string={"date": bad})
        assert response.status_code == 400 and b'"date"' in response.data, bad
    assert client.get("/fhir/Patient?birthdate=1990-02-30").status_code == 400


def test_the_ends_of_the_calendar(client):
    """9999-12-31 is a FHIR date (its range ends at the store's upper bound); 0000 is not one."""
    last = make(client, {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "effectiveDateTime": "9999-12-31"})
    born = make(client, {"resourceType": "Patient", "birthDate": "9999-12-31"})
    assert dates.value_range("9999-12-31T23:59:59.999999Z")[1] == dates.MAX_US
    assert ids(client, "/fhir/Observation", date="9999-12-31") == {last}
    assert ids(client, "/fhir/Observation", date="ge9999") == {last}
    assert ids(client, "/fhir/Patient", birthdate="9999-12-31") == {born}
    assert ids(client, "/fhir/Patient", birthdate="9999") == {born}
    for bad in ("0000", "0000-01"):
        assert client.get("/fhir/Patient", query_string={"birthdate": bad}).status_code == 400, bad
        assert client.get("/fhir/Observation", query_string={"date": bad}).status_code == 400, bad
