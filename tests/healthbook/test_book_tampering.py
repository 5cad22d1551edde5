"""Patient A can never see or change patient B's book: every route of the blueprint, enumerated
from the URL map (a new route cannot be missed), with B's ids put into A's URLs."""

from __future__ import annotations

import itertools
import re

import pytest

from ehr.services import data_requests, healthbook_privacy
from book_seed import context_of, csrf_token

FORMS = {  # what a POST to each endpoint carries (valid, so only the ids can make it fail)
    "healthbook.sharing": {"organization": "", "purpose": "TREAT", "days": "90", "agree": "yes"},
    "healthbook.requests": {"kind": "correction", "text": "Sửa số điện thoại giúp tôi"},
}


def _routes(app):
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("healthbook.")]
    assert len(rules) >= 16
    return [(r, m) for r in rules for m in sorted(r.methods & {"GET", "POST"})]


def _fill(rule, values: dict[str, str]) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], rule.rule)


def test_every_route_refuses_another_patients_ids(app, store, world, signed_in):
    a, b = world.a, world.b
    b_ctx = context_of(store, b.patient_id)
    b_consent = healthbook_privacy.grant(store, b_ctx, b.patient_id, world.orgs[1], "TREAT", 90)
    tasks_before = len(data_requests.of_patient(store, b_ctx, b.patient_id))
    browser = signed_in(a)
    token = csrf_token(browser, f"/healthbook/{a.patient_id}/requests")
    caring = world.orgs[0]  # has both in its care (their visits were recorded there)
    theirs = {"patient_id": b.patient_id, "encounter_id": b.encounters[0], "consent_id": b_consent, "organization_id": caring}
    mine = {"patient_id": a.patient_id, "encounter_id": a.encounters[0], "consent_id": "none", "organization_id": caring}
    checked = 0
    for (rule, method), keys in itertools.product(_routes(app), [("patient_id",), ("encounter_id", "consent_id")]):
        if not set(keys) & rule.arguments:
            continue  # nothing of B's to put in this URL
        values = {**mine, **{k: theirs[k] for k in keys}}
        path = _fill(rule, values)
        if method == "GET":
            response = browser.get(path)
        else:
            form = dict(FORMS.get(rule.endpoint, {}), organization=world.orgs[2])
            response = browser.post(path, {**form, "csrf_token": token})
        body = response.get_data(as_text=True)
        assert response.status_code == 404, (method, path, response.status_code)
        # B's number appears masked (`*********345`) wherever it would show; ids and tokens in the page
        # are random and may contain any 3 digits, so look for the masked form and the full number.
        assert b.name not in body and b.cccd not in body and "*" * 9 + b.cccd[-3:] not in re.sub(r"\s+", "", body), path
        checked += 1
    assert checked >= 16
    # Nothing was written into B's record either.
    [shared] = healthbook_privacy.grants(store, b_ctx, b.patient_id)
    assert shared.grant.id == b_consent and shared.grant.active
    assert len(data_requests.of_patient(store, b_ctx, b.patient_id)) == tasks_before
    assert caring in [c.relationship.organization_id for c in healthbook_privacy.caring(store, b_ctx, b.patient_id)]


@pytest.mark.parametrize("bad", ["not-a-patient", "x" * 65, "..", "%2e%2e"])
def test_garbage_ids_are_not_found(world, signed_in, bad):
    assert signed_in(world.a).get(f"/healthbook/{bad}/visits").status_code == 404
