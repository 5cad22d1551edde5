"""Prescribing checks: what a clinician must see (and explicitly override, with a reason) before a
prescription is recorded.

- allergy: the drug's ingredient, or its class, matches one of the patient's active allergies
  (`ehr.fhir.drug_classes`: the same ingredient; the class the allergy names or the allergen's
  class; a parent class shared, e.g. a cephalosporin for a penicillin allergy, as a cross-reaction);
- duplicate: the drug's active ingredient is that of a current medicine (an active
  MedicationRequest whose supply has not run out) or of another line of the same prescription;
- duration: more days than one outpatient prescription covers (`MAX_OUTPATIENT_DAYS`);
- quantity: more than `QUANTITY_SLACK` × dose × times a day × days.

A quantity above `MAX_QUANTITY` is refused outright (`hard=True`): no override records it.

Messages are Vietnamese templates with their parameters (`MESSAGES[code] % params`), so a page
shows them in its own language (the templates are msgids of the clinic's catalogue).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Iterable

from ehr.fhir import corrections, drug_classes, jsonio
from ehr.fhir import visit as v
from ehr.fhir.terminology import ATC
from ehr.services import chart, policy, search
from ehr.services.context import AccessContext
from ehr.store.runtime import Store

# The longest supply one outpatient prescription may cover. 30 days is the outpatient limit of the
# Ministry of Health's prescribing circular (TT 52/2017/TT-BYT, replaced by TT 26/2025/TT-BYT), as
# issue 15 gives it; the project's notes on Vietnam (../shared/domain-vietnam.md) cite TT 26/2025
# only for e-prescription deadlines and code format and do not quote this article, so the figure
# is to be confirmed against the circular's text. Longer is a warning the doctor may override with
# a reason (e.g. a chronic-disease prescription the circular allows for longer).
MAX_OUTPATIENT_DAYS = 30
QUANTITY_SLACK = Decimal("1.5")  # quantity above 1.5 × dose × frequency × days asks why
MAX_QUANTITY = Decimal(1000)  # no outpatient line dispenses more units than this: refused

# The MoH active-ingredient codes of the drug catalogue (its drugs' own system: catalogue.SYSTEMS).
INGREDIENT_SYSTEM = "https://fhir.ehr-vn.org/CodeSystem/hoat-chat"  # MA_THUOC: MoH active-ingredient code

MESSAGES = {
    "allergy-ingredient": "%(drug)s chứa %(what)s; bệnh nhân đã ghi nhận dị ứng: %(allergy)s.",
    "allergy-class": "%(drug)s thuộc nhóm %(what)s; bệnh nhân đã ghi nhận dị ứng: %(allergy)s.",
    "allergy-cross": "%(drug)s thuộc nhóm %(what)s như chất bệnh nhân đã ghi nhận dị ứng (%(allergy)s): nguy cơ dị ứng chéo.",
    "duplicate": "%(drug)s trùng hoạt chất (%(what)s) với thuốc đang dùng: %(current)s.",
    "duplicate-line": "%(drug)s trùng hoạt chất (%(what)s) với một thuốc khác trong đơn này: %(current)s.",
    "duration": "%(days)s ngày vượt quá %(limit)s ngày, thời gian tối đa của một đơn thuốc ngoại trú.",
    "quantity": "Số lượng %(quantity)s nhiều hơn liều × số lần/ngày × số ngày (%(needed)s).",
    "quantity-max": "Số lượng tối đa mỗi thuốc là %(limit)s.",
}

# v3-ActCode detected-issue codes of each kind
ISSUE_CODES = {"allergy": ("ALGY", "Allergy Alert"), "duplicate": ("DUPTHPY", "Duplicate Therapy Alert"),
               "duration": ("DOSEDURH", "Dose-Duration High Alert"), "quantity": ("DOSE", "Dosage problem")}


@dataclass(frozen=True)
class Warning:  # noqa: A001 - the checks' own word; never raised
    index: int  # the form's row number (rx-{index}-...)
    kind: str  # allergy | duplicate | quantity | duration
    code: str  # the MESSAGES key
    params: dict[str, str] = field(default_factory=dict)
    allergy_id: str | None = None
    medication_id: str | None = None
    high: bool = False  # a high-criticality allergy
    hard: bool = False  # refused; no override

    @property
    def message(self) -> str:
        return MESSAGES[self.code] % self.params

    @property
    def implicated(self) -> str | None:
        if self.allergy_id:
            return f"AllergyIntolerance/{self.allergy_id}"
        return f"MedicationRequest/{self.medication_id}" if self.medication_id else None

    def issue(self, detail: str | None = None) -> v.DrugIssue:
        code, display = ISSUE_CODES[self.kind]
        severity = "high" if self.kind in ("allergy", "duplicate") else "moderate"
        return v.DrugIssue(code, display, detail or self.message, self.implicated, severity)


def _texts(concept: dict[str, Any] | None) -> list[str]:
    concept = concept or {}
    return [str(t) for t in (concept.get("text"), *(c.get("display") for c in concept.get("coding") or [])) if t]


def _atc(concept: dict[str, Any] | None) -> list[str]:
    return [str(c.get("code")) for c in (concept or {}).get("coding") or [] if c.get("system") == ATC and c.get("code")]


def _stem(name: str) -> str:
    """The words of a drug name before its strength: 'Metformin 500 mg, viên nén' -> 'metformin'."""
    words = []
    for word in drug_classes.fold(name).split():
        if any(ch.isdigit() for ch in word):
            break
        words.append(word)
    return " ".join(words)


@dataclass(frozen=True)
class _Drug:
    name: str
    profile: drug_classes.Profile
    keys: frozenset[str]  # what "the same active ingredient" compares


def _drug(texts: list[str], atc: list[str], ingredient_codes: Iterable[str] = ()) -> _Drug:
    found = drug_classes.profile(texts, atc)
    keys = {f"i:{i}" for i in found.ingredients} | {f"atc:{c.upper()}" for c in atc if len(c) >= 7}
    keys |= {f"code:{c}" for c in ingredient_codes if c}
    if not keys and texts and _stem(texts[0]):
        keys.add(f"name:{_stem(texts[0])}")
    return _Drug(texts[0] if texts else "", found, frozenset(keys))


def _of_prescription(rx: v.Prescription) -> _Drug:
    coded = rx.coded
    texts = [rx.drug, *([coded.display, coded.ingredient] if coded else [])]
    return _drug([t for t in texts if t], [], [coded.ingredient_code] if coded and coded.ingredient_code else [])


def _of_request(doc: dict[str, Any]) -> _Drug:
    concept = doc.get("medicationCodeableConcept")
    codes = [str(c.get("code")) for c in (concept or {}).get("coding") or [] if c.get("system") == INGREDIENT_SYSTEM and c.get("code")]
    return _drug(_texts(concept), _atc(concept), codes)


def _days_of(doc: dict[str, Any]) -> int | None:
    duration = (doc.get("dispenseRequest") or {}).get("expectedSupplyDuration") or {}
    if duration.get("value") is None:
        repeat = ((doc.get("dosageInstruction") or [{}])[0].get("timing") or {}).get("repeat") or {}
        duration = repeat.get("boundsDuration") or {}
    try:
        return int(duration["value"]) if duration.get("value") is not None and duration.get("code", "d") == "d" else None
    except (TypeError, ValueError):
        return None


def current_medicines(store: Store, ctx: AccessContext, patient_id: str, today: date | None = None,
                      skip: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """The patient's active MedicationRequests whose supply has not run out (no duration: long-term)."""
    if not policy.may(ctx, "search", "MedicationRequest"):
        return []
    page = search.search(store, ctx, "MedicationRequest", [("patient", patient_id), ("status", "active"), ("_count", "100")])
    docs = corrections.hidden([jsonio.loads_stored(found.body or b"{}") for found, mode in page.entries if mode == "match"])
    today = today or date.today()
    out = []
    for doc in docs:
        if doc.get("id") in skip:
            continue
        days = _days_of(doc)
        try:
            start = datetime.fromisoformat(str(doc.get("authoredOn") or "").replace("Z", "+00:00")).date()
        except ValueError:
            start = None
        if days is not None and start is not None and start + timedelta(days=days) < today:
            continue  # a course that has ended
        out.append(doc)
    return out


def _allergen(doc: dict[str, Any]) -> tuple[str, drug_classes.Profile]:
    texts = _texts(doc.get("code"))
    texts += [str(m.get("text")) for r in doc.get("reaction") or [] for m in [r.get("substance") or {}] if m.get("text")]
    return (texts[0] if texts else ""), drug_classes.profile(texts)


def _amount(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text.replace(".", ",")


def _of_form(doc: dict[str, Any], token: str | None) -> bool:
    """Written by the form with this submission token (a resubmission sees its own lines again)."""
    if not token:
        return False
    idents = doc.get("identifier")
    idents = [idents] if isinstance(idents, dict) else (idents or [])
    return any(isinstance(i, dict) and str(i.get("system", "")).endswith(f"/{v.ITEM_SYSTEM_PATH}")
               and str(i.get("value", "")).startswith(f"{token}/") for i in idents)


def check(store: Store, ctx: AccessContext, patient_id: str, prescriptions: Iterable[tuple[int, v.Prescription]], *,
          lists: chart.Lists | None = None, today: date | None = None, skip: frozenset[str] = frozenset(),
          token: str | None = None, new_allergies: Iterable[v.Allergy] = ()) -> list[Warning]:
    """The warnings of the prescription lines (form row number, line). `skip`: ids of resources an
    edit replaces (the visit's own earlier lines are no duplicate of themselves); `token`: the
    form's submission token (what a first submission of it wrote is not checked against);
    `new_allergies`: allergies typed on the same form, checked too."""
    lines = list(prescriptions)
    if not lines:
        return []
    lists = lists or chart.lists(store, ctx, patient_id)
    allergies = [(doc, *_allergen(doc)) for doc in lists.allergies if doc.get("id") not in skip and not _of_form(doc, token)]
    allergies += [({"criticality": a.criticality}, a.substance, drug_classes.profile([a.substance])) for a in new_allergies]
    current = [(doc, _of_request(doc)) for doc in current_medicines(store, ctx, patient_id, today, skip) if not _of_form(doc, token)]
    out: list[Warning] = []
    seen: list[tuple[_Drug, str]] = []
    for index, rx in lines:
        drug = _of_prescription(rx)
        for doc, name, allergen in allergies:
            if not allergen.known:
                continue
            found = drug_classes.allergy_match(drug.profile, allergen)
            if found:
                out.append(Warning(index, "allergy", f"allergy-{found.kind}",
                                   {"drug": rx.drug, "what": found.label, "allergy": name},
                                   allergy_id=str(doc["id"]) if doc.get("id") else None, high=doc.get("criticality") == "high"))
        for doc, other in current:
            same = drug.keys & other.keys
            if same:
                out.append(Warning(index, "duplicate", "duplicate", {"drug": rx.drug, "what": _key_label(same), "current": other.name},
                                   medication_id=str(doc.get("id"))))
        for other, other_name in seen:
            same = drug.keys & other.keys
            if same:
                out.append(Warning(index, "duplicate", "duplicate-line", {"drug": rx.drug, "what": _key_label(same), "current": other_name}))
        seen.append((drug, rx.drug))
        if rx.duration_days is not None and rx.duration_days > MAX_OUTPATIENT_DAYS:
            out.append(Warning(index, "duration", "duration", {"days": str(rx.duration_days), "limit": str(MAX_OUTPATIENT_DAYS)}))
        if rx.quantity is not None and rx.quantity > MAX_QUANTITY:
            out.append(Warning(index, "quantity", "quantity-max", {"limit": _amount(MAX_QUANTITY)}, hard=True))
        elif rx.quantity is not None and rx.dose_value is not None and rx.duration_days:
            needed = rx.dose_value * rx.frequency * rx.duration_days
            if rx.quantity > needed * QUANTITY_SLACK:
                out.append(Warning(index, "quantity", "quantity", {"quantity": _amount(rx.quantity), "needed": _amount(needed)}))
    return out


def _key_label(keys: Iterable[str]) -> str:
    key = sorted(keys)[0]
    kind, _, value = key.partition(":")
    return drug_classes.label_of(value) if kind == "i" else value
