"""Every principal x every interaction x own/other patient, checked against policy-table.txt.

Each cell asserts the status class (allowed 2xx / refused 4xx) and that the canaries in the response
are exactly the slices the table lets that principal see (no more: no leak; no less: it works).
Staff and patients call the services their pages call; hospital systems go through HTTP with real
tokens, so their cells run twice (services and HTTP).
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode
from dataclasses import dataclass
from typing import Any, Callable

from access_helpers import bearer
from ehr.fhir.outcomes import FhirError, operation_outcome
from ehr.services import care, everything, export, patients, resources
from ehr.services import search as search_svc
from ehr.services.context import AccessContext
from world import CCCD, CODES, FACILITY_F1, FACILITY_FB, Row, World, build, policy_table

OBS = {"A": ["A.f1", "A.h3"], "B": ["B.fb"]}
FIRST_OBS = {"A": "A.f1", "B": "B.fb"}


@dataclass(frozen=True)
class Cell:
    name: str
    rtype: str  # the type whose scope the interaction needs
    target: str | None  # "A", "B" or None (not about one patient)


def _visible(row: Row, slices: list[str]) -> set[str]:
    return {s for s in slices if s in row.sees}


# Writes that change what others have written, decided by the table's last column (which already
# says what scopes allow): (what it names there, canaries in an allowed answer).
CHANGES = {
    "patch Patient": lambda x: (f"{x}.pat", {f"{x}.pat"}),
    "update Observation": lambda x: (FIRST_OBS[x], {FIRST_OBS[x]}),
    "move Observation": lambda x: (None, set()),  # to another patient's record: nobody
    "rename Organization": lambda x: (None, set()),  # directory names are an operator's
    "take facility code": lambda x: (None, set()),  # facility codes too
    "update NamingSystem": lambda x: (None, set()),  # conformance artifacts too
    "delete Group": lambda x: ("grp", set()),
    "delete Observation": lambda x: ({"A": "A.h3", "B": "B.fb"}[x], set()),
    "merge": lambda x: (f"merge-{x}", set()),
    "check-in": lambda x: (f"check-in-{x}", set()),  # at the clinic desk: staff only, no API
}
DESTRUCTIVE = {"delete Group", "delete Observation", "merge", "check-in"}  # the allowed principal goes last
DESK_ONLY = {"check-in"}  # no FHIR interaction: the services door only


def expected(row: Row, cell: Cell) -> tuple[bool, set[str]]:
    """(allowed, canaries expected in the body) for a principal's row of the table."""
    if cell.name in CHANGES:
        name, shown = CHANGES[cell.name](cell.target or "A")
        allowed = name is not None and name in row.changes
        return allowed, shown if allowed else set()
    needs = {cell.rtype, "Observation"} if cell.name.startswith("search _has") else {cell.rtype}  # _has searches Observations
    if "*" not in row.types and not needs <= row.types:
        return False, set()
    x = cell.target
    readable = lambda s: "*" in row.types or ("Observation" in row.types if ".pat" not in s else "Patient" in row.types)  # noqa: E731
    see = {s for s in row.sees if readable(s)}
    if x is None:
        wanted = {"search all": [s for v in OBS.values() for s in v], "history type": [s for v in OBS.values() for s in v]}
        return True, see & set(wanted.get(cell.name, [s for v in OBS.values() for s in v] + ["A.pat", "B.pat", "G.pat"]))
    pat, obs, first = f"{x}.pat", OBS[x], FIRST_OBS[x]
    direct = {"read Patient": pat, "history Patient": pat, "read Observation": first, "vread Observation": first}
    if cell.name in direct:
        return direct[cell.name] in see, {direct[cell.name]} & see
    if cell.name in ("search by subject", "search chained"):
        return True, (set(obs) & see) if (cell.name == "search by subject" or pat in see) else set()
    if cell.name in ("search identifier", "$match"):
        return True, {pat} & see
    if cell.name == "search _include":
        found = set(obs) & see
        return True, found | ({pat} & see if found else set())
    if cell.name == "search _revinclude":
        return True, ({pat} | (set(obs) & see)) if pat in see else set()
    if cell.name.startswith("search _has"):
        slice_ = cell.name.split()[-1]
        return True, {pat} if pat in see and slice_ in see else set()
    if cell.name == "count":
        return True, set()
    if cell.name == "$everything":
        return pat in see, ({pat} | (set(obs) & see)) if pat in see else set()
    if cell.name == "create Observation":
        return x in row.writes, set()
    raise AssertionError(cell.name)


def cells() -> list[Cell]:
    out = []
    for x in ("A", "B"):
        out += [Cell(n, "Patient", x) for n in ("read Patient", "history Patient", "search identifier", "search _revinclude", "$everything", "$match")]
        out += [Cell(n, "Observation", x) for n in ("read Observation", "vread Observation", "search by subject", "search chained", "search _include", "count")]
        out += [Cell(f"search _has {s}", "Patient", x) for s in OBS[x]]
    out += [Cell("search all", "Observation", None), Cell("history type", "Observation", None), Cell("export", "Patient", None)]
    out += [Cell(n, "Observation", x) for x in ("A", "B") for n in ("create Observation", "update Observation", "move Observation")]  # writes last
    out += [Cell("patch Patient", "Patient", x) for x in ("A", "B")]
    out += [Cell("check-in", "Patient", "A")]  # starts care (F2, F3): nothing after it depends on care but merge, an admin's
    out += [Cell(n, "Organization", None) for n in ("rename Organization", "take facility code")]
    out += [Cell("update NamingSystem", "NamingSystem", None), Cell("delete Group", "Group", None)]
    out += [Cell("delete Observation", "Observation", x) for x in ("A", "B")] + [Cell("merge", "Patient", "A")]
    return out


def _moved(w: World, x: str, store: Any) -> dict[str, Any]:
    doc = _observation_doc(w, x, store)
    doc["subject"] = {"reference": f"Patient/{w.patient('C')}"}
    return doc


def _organization(store: Any, org_id: str, **changes: Any) -> dict[str, Any]:
    with store.reading(store_gate()) as uow:
        doc = json.loads(resources.read_live(uow, store, "Organization", org_id).body)
    doc.pop("meta", None)
    return {**doc, **changes}


def _own_org(ctx: AccessContext) -> str:
    return ctx.organization or "org-f1"


def _write_doc(cell: Cell, w: World, store: Any, ctx: AccessContext) -> tuple[str, str, dict[str, Any]]:
    """(type, id, body) of the PUT a write cell sends."""
    if cell.name == "rename Organization":
        return "Organization", "org-f1", _organization(store, "org-f1", name="Bệnh viện F1 (mạo danh)")
    if cell.name == "take facility code":
        org = _own_org(ctx)  # its own Organization, with another facility's code
        code = FACILITY_FB if org == "org-f1" else FACILITY_F1
        return "Organization", org, _organization(store, org, identifier=[{"system": store.systems.facility, "value": code}])
    if cell.name == "update NamingSystem":
        with store.reading(store_gate()) as uow:
            doc = json.loads(resources.read_live(uow, store, "NamingSystem", "ns-bhyt").body)
        doc.pop("meta", None)
        return "NamingSystem", "ns-bhyt", {**doc, "description": "changed"}
    if cell.name == "move Observation":
        return "Observation", w.ids[FIRST_OBS[cell.target]], _moved(w, cell.target, store)
    return "Observation", w.ids[FIRST_OBS[cell.target]], _observation_doc(w, cell.target, store)


PATCH = [{"op": "add", "path": "/telecom", "value": [{"system": "phone", "value": "0912345678"}]}]


def _merge_params(w: World, x: str) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [
        {"name": "source-patient", "valueReference": {"reference": f"Patient/{w.patient(x)}"}},
        {"name": "target-patient", "valueReference": {"reference": f"Patient/{w.patient('C')}"}}]}


def _observation_doc(w: World, x: str, store: Any) -> dict[str, Any]:
    with store.reading(store_gate()) as uow:
        current = resources.read_live(uow, store, "Observation", w.ids[FIRST_OBS[x]])
    doc = json.loads(current.body)
    doc["status"] = "amended"
    return doc


def store_gate() -> Any:
    from ehr.store.access import INTERNAL

    return INTERNAL


def _params(cell: Cell, w: World, store: Any) -> tuple[str, list[tuple[str, str]]]:
    x = cell.target or "A"
    p, cccd = w.patient(x), f"{store.systems.cccd}|{CCCD[x]}"
    return {
        "search identifier": ("Patient", [("identifier", cccd)]),
        "search _revinclude": ("Patient", [("_id", p), ("_revinclude", "Observation:subject")]),
        "search by subject": ("Observation", [("subject", f"Patient/{p}")]),
        "search chained": ("Observation", [("subject.identifier", cccd)]),
        "search _include": ("Observation", [("subject", f"Patient/{p}"), ("_include", "Observation:subject")]),
        "count": ("Observation", [("subject", f"Patient/{p}"), ("_summary", "count")]),
        "search all": ("Observation", [("_count", "100")]),
    }.get(cell.name) or ("Patient", [(f"_has:Observation:subject:code", CODES[cell.name.split()[-1]]), ("_id", p)])


def _candidate(w: World, x: str, store: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "identifier": [{"system": store.systems.cccd, "value": CCCD[x]}],
            "name": [{"text": f"Trần Thị {w.canary[f'{x}.pat']}"}]}


def _new_observation(w: World, x: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "note"}, "subject": {"reference": f"Patient/{w.patient(x)}"}}


def via_services(store: Any, settings: Any, ctx: AccessContext, cell: Cell, w: World) -> tuple[int, bytes, int | None]:
    x = cell.target
    try:
        if cell.name in ("read Patient", "read Observation"):
            rtype = cell.name.split()[1]
            v = resources.read(store, ctx, rtype, w.ids[f"{x}.pat" if rtype == "Patient" else FIRST_OBS[x]])
            return 200, v.body, None
        if cell.name == "vread Observation":
            return 200, resources.vread(store, ctx, "Observation", w.ids[FIRST_OBS[x]], "1").body, None
        if cell.name == "history Patient":
            page = resources.history(store, ctx, "Patient", w.patient(x), None, 50, None)
            return 200, b"\n".join(v.body or b"" for v in page.entries), None
        if cell.name == "history type":
            page = resources.history(store, ctx, "Observation", None, None, 200, None)
            return 200, b"\n".join(v.body or b"" for v in page.entries), None
        if cell.name == "$everything":
            page = everything.patient_everything(store, ctx, w.patient(x), {})
            return 200, b"\n".join(v.body or b"" for v in page.entries), page.total
        if cell.name == "$match":
            found = patients.match(store, ctx, _candidate(w, x, store), False, 10)
            return 200, b"\n".join(m.version.body or b"" for m in found), None
        if cell.name == "export":
            job = export.kick_off(store, ctx, "patient", None, {}, "http://localhost/fhir/Patient/$export")
            while export.run_pending(store, settings):
                pass
            state = export.status(store, ctx, job, "http://localhost/fhir/$export-file")
            assert state.manifest is not None, state
            files = [item["url"].rsplit("/", 1)[1][: -len(".ndjson")] for item in state.manifest["output"]]
            return 200, b"".join(b"".join(export.open_file(store, ctx, job, t, settings)) for t in files), None
        if cell.name == "create Observation":
            return resources.create(store, ctx, _new_observation(w, x)).status, b"", None
        if cell.name in ("update Observation", "move Observation", "rename Organization", "take facility code", "update NamingSystem"):
            rtype, rid, doc = _write_doc(cell, w, store, ctx)
            written = resources.update(store, ctx, rtype, rid, doc)
            return written.status, written.version.body or b"", None
        if cell.name == "patch Patient":
            written = resources.patch(store, ctx, "Patient", w.patient(x), PATCH)
            return written.status, written.version.body or b"", None
        if cell.name in ("delete Group", "delete Observation"):
            rid = w.ids["grp"] if cell.name == "delete Group" else w.ids[CHANGES[cell.name](x)[0]]
            resources.delete(store, ctx, cell.rtype, rid)
            return 204, b"", None
        if cell.name == "check-in":
            return 200 if care.check_in(store, ctx, CCCD[x]) == w.patient(x) else 500, b"", None
        if cell.name == "merge":
            result = patients.merge(store, ctx, {"reference": f"Patient/{w.patient(x)}"}, [], {"reference": f"Patient/{w.patient('C')}"}, [], False)
            return 200, result.target.body or b"", None
        rtype, params = _params(cell, w, store)
        page = search_svc.search(store, ctx, rtype, params)
        return 200, b"\n".join(v.body or b"" for v, _ in page.entries), page.total
    except FhirError as exc:
        return exc.status, json.dumps(operation_outcome(exc.issues)).encode(), None


def via_http(client: Any, store: Any, settings: Any, value: str, ctx: AccessContext, cell: Cell, w: World) -> tuple[int, bytes, int | None]:
    x = cell.target
    h = bearer(value)
    if cell.name in ("read Patient", "read Observation"):
        rtype = cell.name.split()[1]
        r = client.get(f"/fhir/{rtype}/{w.ids[f'{x}.pat' if rtype == 'Patient' else FIRST_OBS[x]]}", headers=h)
    elif cell.name == "vread Observation":
        r = client.get(f"/fhir/Observation/{w.ids[FIRST_OBS[x]]}/_history/1", headers=h)
    elif cell.name == "history Patient":
        r = client.get(f"/fhir/Patient/{w.patient(x)}/_history", headers=h)
    elif cell.name == "history type":
        r = client.get("/fhir/Observation/_history?_count=200", headers=h)
    elif cell.name == "$everything":
        r = client.get(f"/fhir/Patient/{w.patient(x)}/$everything", headers=h)
    elif cell.name == "$match":
        params = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": _candidate(w, x, store)}]}
        r = client.post("/fhir/Patient/$match", headers=h, data=json.dumps(params))
    elif cell.name == "export":
        kick = client.get("/fhir/Patient/$export", headers={**h, "Prefer": "respond-async"})
        if kick.status_code != 202:
            return kick.status_code, kick.data, None
        while export.run_pending(store, settings):
            pass
        manifest = client.get(kick.headers["Content-Location"].replace("http://localhost", ""), headers=h).get_json()
        data = b"".join(client.get(item["url"].replace("http://localhost", ""), headers=h).data for item in manifest["output"])
        return 200, data, None
    elif cell.name == "create Observation":
        r = client.post("/fhir/Observation", headers=h, data=json.dumps(_new_observation(w, x)))
    elif cell.name in ("update Observation", "move Observation", "rename Organization", "take facility code", "update NamingSystem"):
        rtype, rid, doc = _write_doc(cell, w, store, ctx)
        r = client.put(f"/fhir/{rtype}/{rid}", headers=h, data=json.dumps(doc))
    elif cell.name == "patch Patient":
        r = client.patch(f"/fhir/Patient/{w.patient(x)}", headers={**h, "Content-Type": "application/json-patch+json"}, data=json.dumps(PATCH))
    elif cell.name in ("delete Group", "delete Observation"):
        rid = w.ids["grp"] if cell.name == "delete Group" else w.ids[CHANGES[cell.name](x)[0]]
        r = client.delete(f"/fhir/{cell.rtype}/{rid}", headers=h)
    elif cell.name == "merge":
        r = client.post("/fhir/Patient/$merge", headers=h, data=json.dumps(_merge_params(w, x)))
    else:
        rtype, params = _params(cell, w, store)
        r = client.post(f"/fhir/{rtype}/_search", headers={**h, "Content-Type": "application/x-www-form-urlencoded"}, data=urlencode(params))
    total = None
    if r.status_code == 200 and r.is_json and r.get_json().get("resourceType") == "Bundle":
        total = r.get_json().get("total")
    return r.status_code, r.data, total


CANARY = re.compile(rb"CANARY[0-9A-F]{10}")


def test_authorization_matrix(app, client, store, capsys):
    table = policy_table()
    w = build(client, store)
    settings = app.extensions["ehr.export"]
    by_canary = {v.encode(): k for k, v in w.canary.items()}
    runs: list[tuple[str, str, Callable[[Cell], tuple[int, bytes, int | None]]]] = []
    for name in table:
        ctx = w.contexts[name]
        runs.append((name, "services", lambda cell, ctx=ctx: via_services(store, settings, ctx, cell, w)))
        if name in w.tokens:
            runs.append((name, "http", lambda cell, t=w.tokens[name], ctx=ctx: via_http(client, store, settings, t, ctx, cell, w)))
    problems, checked = [], 0
    for cell in cells():
        ordered = sorted(runs, key=lambda run: expected(table[run[0]], cell)[0]) if cell.name in DESTRUCTIVE else runs
        for name, door, call in ordered:
            if door == "http" and cell.name in DESK_ONLY:
                continue
            allowed, canaries = expected(table[name], cell)
            status, data, total = call(cell)
            seen = {by_canary[m] for m in CANARY.findall(data)}
            checked += 1
            if (200 <= status < 300) != allowed or seen != canaries:
                problems.append(f"{name} [{door}] {cell.name} {cell.target or ''}: status {status}, saw {sorted(seen)}, expected {'allow' if allowed else 'deny'} {sorted(canaries)}")
            if cell.name == "count" and allowed:
                want = len(set(OBS[cell.target]) & table[name].sees)
                if total != want:
                    problems.append(f"{name} [{door}] count {cell.target}: total {total}, expected {want}")
    with capsys.disabled():
        print(f"\nauthorization matrix: {checked} cells checked, {len(table)} principals, {len(cells())} interactions, {len(problems)} mismatches")
    assert not problems, "\n".join(problems)
