"""Small curated code tables for the visit form (pure, no Flask/DB): vaccines, routes, injection
sites, encounter classes, blood groups, dosing frequencies and representative relationships.

Data: CSV files in ehr/data/vn (sources, licences and dates in its README.md). Each loader reads its
file once and returns a tuple of frozen rows; every row has `code`, `vi` and `en`, and
`label(row, lang)` picks the Vietnamese or English name.

Blood groups use the LOINC answer codes of answer list LL2972-9, the list bound to LOINC 882-1
"ABO and Rh group [Type] in Blood"; the SNOMED CT finding codes (as in the IPS value set) are kept
alongside for exchanges that want SNOMED CT. Injection sites use HL7 v3 ActSite, except the mouth
(oral vaccines), which has no ActSite code and uses SNOMED CT 74262004 "Oral cavity structure".
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol, TypeVar

from ehr.fhir.terminology import ACT_CODE, CVX, LOINC, SNOMED
from ehr.identity.codetables import DATA

ACT_SITE = "http://terminology.hl7.org/CodeSystem/v3-ActSite"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
GTS_ABBREVIATION = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"
ABO_RH_LOINC = "882-1"  # ABO and Rh group [Type] in Blood; answers from LL2972-9

__all__ = [
    "ABO_RH_LOINC", "ACT_CODE", "ACT_SITE", "CVX", "GTS_ABBREVIATION", "LOINC", "ROLE_CODE", "SNOMED",
    "BloodGroup", "EncounterClass", "Frequency", "Relationship", "Route", "Site", "Vaccine",
    "blood_groups", "by_code", "encounter_classes", "frequencies", "label", "relationships", "routes",
    "sites", "vaccines",
]


class _Labelled(Protocol):
    code: str
    vi: str
    en: str


Row = TypeVar("Row", bound=_Labelled)


def _rows(name: str) -> list[dict[str, str]]:
    with open(DATA / name, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def label(row: _Labelled, lang: str = "vi") -> str:
    """The row's name in 'vi' or 'en' (a tag such as 'vi-VN' or 'en-US' also works)."""
    primary = (lang or "").split("-")[0].split("_")[0].lower()
    if primary == "vi":
        return row.vi
    if primary == "en":
        return row.en
    raise ValueError("language must be 'vi' or 'en'")


def by_code(rows: tuple[Row, ...], code: str) -> Row | None:
    """The row with this code, or None."""
    return next((r for r in rows if r.code == code), None)


@dataclass(frozen=True)
class Vaccine:
    code: str  # CVX, kept as text with its leading zero ("08")
    display: str  # CDC CVX short description
    vi: str
    en: str
    examples: str  # product names seen in Vietnam, informative only
    epi: bool  # in the national expanded programme (tiêm chủng mở rộng, TCMR) schedule
    system: str = CVX


@dataclass(frozen=True)
class Route:
    code: str  # SNOMED CT, from the FHIR route-codes value set
    display: str
    abbr: str
    vi: str
    en: str
    system: str = SNOMED


@dataclass(frozen=True)
class Site:
    code: str
    system: str  # v3-ActSite, or SNOMED CT for the mouth
    display: str
    vi: str
    en: str


@dataclass(frozen=True)
class EncounterClass:
    code: str  # local kind of visit ("checkup"); several kinds share one Encounter.class
    class_code: str  # v3-ActCode for Encounter.class
    class_display: str
    vi: str
    en: str
    class_system: str = ACT_CODE

    def coding(self) -> dict[str, str]:
        return {"system": self.class_system, "code": self.class_code, "display": self.class_display}


@dataclass(frozen=True)
class BloodGroup:
    code: str  # LOINC answer (LA) code for 882-1
    display: str
    snomed: str
    abo: str
    rh: str  # "+" or "-"
    vi: str
    en: str
    system: str = LOINC


@dataclass(frozen=True)
class Frequency:
    code: str  # local key ("tid")
    gts_code: str  # v3-GTSAbbreviation for Timing.code, "" when that code system has none
    frequency: int | None
    period: float | None
    period_unit: str  # UCUM-style FHIR unit: "h", "d"
    when: str  # FHIR event-timing, e.g. "HS" (at bedtime)
    as_needed: bool  # Dosage.asNeededBoolean; no Timing.repeat
    vi: str
    en: str

    def timing(self) -> dict[str, Any]:
        """FHIR Timing for Dosage.timing ({} for 'as needed')."""
        repeat: dict[str, Any] = {}
        if self.frequency is not None and self.period is not None:
            repeat = {"frequency": self.frequency, "period": self.period, "periodUnit": self.period_unit}
        if self.when:
            repeat["when"] = [self.when]
        out: dict[str, Any] = {"repeat": repeat} if repeat else {}
        if self.gts_code:
            out["code"] = {"coding": [{"system": GTS_ABBREVIATION, "code": self.gts_code}], "text": self.en}
        return out


@dataclass(frozen=True)
class Relationship:
    code: str  # v3-RoleCode for RelatedPerson.relationship
    display: str
    vi: str
    en: str
    system: str = ROLE_CODE


def _number(value: str) -> float | None:
    return float(value) if value else None


@lru_cache(maxsize=1)
def vaccines() -> tuple[Vaccine, ...]:
    return tuple(
        Vaccine(r["code"], r["display"], r["name_vi"], r["name_en"], r["examples"], r["epi"] == "1")
        for r in _rows("vaccines_cvx.csv")
    )


@lru_cache(maxsize=1)
def routes() -> tuple[Route, ...]:
    return tuple(Route(r["code"], r["display"], r["abbr"], r["name_vi"], r["name_en"]) for r in _rows("routes_snomed.csv"))


@lru_cache(maxsize=1)
def sites() -> tuple[Site, ...]:
    return tuple(Site(r["code"], r["system"], r["display"], r["name_vi"], r["name_en"]) for r in _rows("immunization_sites.csv"))


@lru_cache(maxsize=1)
def encounter_classes() -> tuple[EncounterClass, ...]:
    return tuple(
        EncounterClass(r["code"], r["class_code"], r["class_display"], r["name_vi"], r["name_en"])
        for r in _rows("encounter_classes.csv")
    )


@lru_cache(maxsize=1)
def blood_groups() -> tuple[BloodGroup, ...]:
    return tuple(
        BloodGroup(r["code"], r["display"], r["snomed"], r["abo"], r["rh"], r["name_vi"], r["name_en"])
        for r in _rows("blood_groups.csv")
    )


@lru_cache(maxsize=1)
def frequencies() -> tuple[Frequency, ...]:
    out = []
    for r in _rows("dosing_frequencies.csv"):
        period = _number(r["period"])
        out.append(
            Frequency(
                r["code"], r["gts_code"], int(r["frequency"]) if r["frequency"] else None,
                int(period) if period is not None and period.is_integer() else period,
                r["period_unit"], r["when"], r["as_needed"] == "1", r["name_vi"], r["name_en"],
            )
        )
    return tuple(out)


@lru_cache(maxsize=1)
def relationships() -> tuple[Relationship, ...]:
    return tuple(Relationship(r["code"], r["display"], r["name_vi"], r["name_en"]) for r in _rows("relationships.csv"))
