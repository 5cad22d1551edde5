"""The shipped Vietnamese code tables (ehr/data/vn), loaded once."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "vn"


def _rows(name: str) -> list[dict[str, str]]:
    with open(DATA / name, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@dataclass(frozen=True)
class Province:
    code: str
    name: str
    full_name: str


@dataclass(frozen=True)
class Commune:
    code: str
    name: str
    full_name: str
    province_code: str


@dataclass(frozen=True)
class OldProvince:
    code: str
    cccd_prefix: str
    name: str
    new_province_code: str


@lru_cache(maxsize=1)
def provinces() -> dict[str, Province]:
    return {r["code"]: Province(r["code"], r["name"], r["full_name"]) for r in _rows("provinces.csv")}


@lru_cache(maxsize=1)
def communes() -> dict[str, Commune]:
    return {r["code"]: Commune(r["code"], r["name"], r["full_name"], r["province_code"]) for r in _rows("communes.csv")}


@lru_cache(maxsize=1)
def provinces_pre2025() -> dict[str, OldProvince]:
    """Keyed by the 3-digit CCCD prefix."""
    return {
        r["cccd_prefix"]: OldProvince(r["code"], r["cccd_prefix"], r["name"], r["new_province_code"])
        for r in _rows("provinces_pre2025.csv")
    }


@lru_cache(maxsize=1)
def ethnic_groups() -> dict[str, str]:
    return {r["code"]: r["name_vi"] for r in _rows("ethnic_groups_1979.csv")}


@lru_cache(maxsize=1)
def occupations() -> dict[str, str]:
    return {r["code"]: r["name_vi"] for r in _rows("occupation_groups_moh_4069.csv")}
