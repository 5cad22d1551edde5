"""ICD-10 diagnoses for the visit form: lookup, picker search and validity rules (pure, no Flask/DB).

The list is the Ministry of Health's ICD-10 (Bộ Y tế, QĐ 4469/QĐ-BYT, 26/10/2020, Phụ lục 1;
WHO ICD-10), shipped as ``ehr/data/vn/icd10_vn_4469.csv.gz``: 12,137 codes (12,219 source rows
less 82 repeated rows) with Vietnamese and English names, and its validity appendices
(``icd10_vn_4469_rules.csv.gz``: A2 codes that must not be the main diagnosis, A3 age validity,
A4 sex validity; ``icd10_vn_4469_pairs.csv.gz``: A1 dagger/asterisk pairs). Both are made from
the sheets in ``../shared/data/vn/icd10`` by ``python -m ehr.identity.icd10 import DIR`` (see
`build_data`; the fixes it applies are listed in ``ehr/data/vn/README.md``). A new official list
in the same layout loads without a code change (``VERSION`` names the list that is shipped).

- Only codes of the list are accepted: no invented 5-character "extensions" (``X99.99``,
  ``I10.99`` are refused; the list's own 677 five-character codes, e.g. ``M01.30``, are accepted).
- Names: ``Diagnosis.display_vi`` / ``display_en``; ``display`` is the Vietnamese name (what a
  Condition records, the clinic's language); ``name(lang)`` picks the page's language.
- Search (`search`): by code prefix, or by words in either language, accent- and case-insensitive
  with the same folding as patient names (`ehr.crypto.blind.fold_text`), ranked.
- Validity (`validate`): the appendices' rules, as `Problem` values the pages turn into messages.

The index is built lazily once, in memory (~0.8-1 s, once per worker). Measured with
``.venv/bin/python -m ehr.identity.icd10`` (Python 3.11.7, 2-CPU container shared with a running
PostgreSQL test suite, 2026-11-25, three runs; median of 200 searches, range over the runs):
build, including reading the gzipped files, 785-969 ms; ``search('tăng huyết áp')`` 0.34-0.35 ms,
``search('tang huyet ap')`` 0.32-0.34 ms, ``search('viêm')`` 2.1-2.3 ms and ``search('benh')``
1.9-3.0 ms (one common word: 1,700+ matches, cut to a pool of 300 shortest names before ranking),
``search('diabetes')`` 0.46-0.48 ms, ``search('J06')`` 0.002 ms; ``validate`` of 3 codes 0.005 ms.
"""

from __future__ import annotations

import bisect
import csv
import gzip
import heapq
import io
import re
import statistics
import sys
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Iterable

from ehr.crypto.blind import fold_text, normalize_identifier

SYSTEM = "http://hl7.org/fhir/sid/icd-10"
VERSION = "QĐ 4469/2020"  # Condition.code.coding[0].version of codes from the shipped list
DATA = Path(__file__).resolve().parent.parent / "data" / "vn"
LIST_FILE = DATA / "icd10_vn_4469.csv.gz"
RULES_FILE = DATA / "icd10_vn_4469_rules.csv.gz"
PAIRS_FILE = DATA / "icd10_vn_4469_pairs.csv.gz"
TERMS_FILE = DATA / "icd10_search_terms.csv"  # the project's own search terms (lay names, "typ 2"...)

_SHAPE = re.compile(r"([A-Z]\d{2})(?:\.?([0-9A-Z]{1,2}))?", re.ASCII)  # A00 .. Z99, optional .x / .xx
_CODE_PREFIX = re.compile(r"[A-Z]\d{1,2}[0-9A-Z]{0,2}", re.ASCII)  # a query typed as a code: J0, J069
_WORD = re.compile(r"[0-9a-z]+")
_ACCENTED = re.compile(r"\w+")  # words as typed, with their accents
# Qualifiers that do not count as "other words" of a name: "Viêm phổi, không đặc hiệu" fits
# "viêm phổi" as well as the category does, and before "Viêm phổi do adenovirus".
_QUALIFIERS = (("khong", "dac", "hieu"), ("khong", "xac", "dinh"), ("khong", "phan", "loai"),
               ("chua", "co", "bien", "chung"), ("unspecified",), ("not", "specified"))
_POOL = 300  # candidates fully ranked when a query matches more codes
_AGE = re.compile(r"(\d*)-(\d*)([dy])")  # inclusive bounds: "0-365d", "28-d", "8-19y", "16-y"


@dataclass(frozen=True)
class Diagnosis:
    code: str  # canonical form, e.g. "E11.9", "M01.30"
    display_vi: str
    display_en: str
    mark: str = ""  # "†" (dagger) or "*" (asterisk) as the list prints it
    leaf: bool = True  # no more detailed code under it
    version: str = VERSION
    national: bool = False  # kept for callers of the WHO-based index: every code is the list's own

    @property
    def display(self) -> str:
        """The Vietnamese name: what a Condition records as ``coding.display`` and ``text``."""
        return self.display_vi

    def name(self, lang: str | None = "vi") -> str:
        """The name in the page's language ("vi" or "en", "en-GB"...); Vietnamese by default."""
        if (lang or "vi").lower().startswith("en") and self.display_en:
            return self.display_en
        return self.display_vi

    label = name


@dataclass(frozen=True)
class Problem:
    """A validity rule broken by the code at ``index`` of the visit's list (main diagnosis first).

    ``message_key`` is one of ``unknown``, ``not_main``, ``female_only``, ``male_only``, ``age``,
    ``asterisk_without_dagger``, ``asterisk_alone``. For ``age``: ``unit`` ("d" or "y") and the
    inclusive bounds ``low``/``high`` (None = open); for ``asterisk_without_dagger``: ``daggers``,
    some of the dagger codes the list pairs with it. ``appendix`` names the source (e.g. "A3.1")."""

    index: int
    message_key: str
    code: str
    appendix: str = ""
    unit: str = ""
    low: int | None = None
    high: int | None = None
    daggers: tuple[str, ...] = field(default_factory=tuple)


def normalize(code: str) -> str | None:
    """Canonical form of a typed code ('m0130', ' M01.30 ', 'E11.9*' -> 'M01.30', 'E11.9'), or None."""
    match = _SHAPE.fullmatch(normalize_identifier(code or "").rstrip("*†+"))
    if not match:
        return None
    head, tail = match.groups()
    return f"{head}.{tail}" if tail else head


def _words(text: str) -> list[str]:
    return _WORD.findall(fold_text(text))


def _clean(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text or "").split())


def _read_gz(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _core_len(words: tuple[str, ...]) -> int:
    """How many words a name has, not counting the qualifiers of `_QUALIFIERS`."""
    count, i = 0, 0
    while i < len(words):
        skip = next((len(q) for q in _QUALIFIERS if words[i:i + len(q)] == q), 0)
        count += 0 if skip else 1
        i += skip or 1
    return count


def age(birth: date | str | None, on: date) -> tuple[int, int] | tuple[None, None]:
    """(days, completed years) of a patient born on `birth` (a date or a FHIR date), on `on`;
    (None, None) for a partial FHIR date ("1950", "1950-03") or none: the age rules are skipped."""
    if isinstance(birth, str):
        try:
            birth = date.fromisoformat(birth) if len(birth) == 10 else None
        except ValueError:
            birth = None
    if not isinstance(birth, date):
        return None, None
    years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    return (on - birth).days, years


class Icd10Index:
    """In-memory ICD-10 index; use the module functions, which share one lazily built instance."""

    def __init__(self, list_file: Path = LIST_FILE, rules_file: Path | None = RULES_FILE,
                 pairs_file: Path | None = PAIRS_FILE, terms_file: Path | None = TERMS_FILE,
                 version: str = VERSION) -> None:
        rows = _read_gz(list_file)
        codes = sorted({normalize(r["code"]) or "" for r in rows} - {""}, key=lambda c: c.replace(".", ""))
        parents = {c[:-1] for c in codes if len(c) == 6} | {c[:3] for c in codes if len(c) > 3}
        by_code: dict[str, Diagnosis] = {}
        for r in rows:
            code = normalize(r["code"])
            if code and code not in by_code:
                by_code[code] = Diagnosis(code, _clean(r["name_vi"]), _clean(r["name_en"]), r.get("mark") or "",
                                          code not in parents, version)
        self.version = version
        self._by_code = by_code
        self._diagnoses = [by_code[c] for c in codes]
        self._nodot = [c.replace(".", "") for c in codes]
        terms: dict[str, list[str]] = {}
        if terms_file and terms_file.is_file():
            with open(terms_file, encoding="utf-8", newline="") as fh:
                for r in csv.DictReader(fh):
                    code = normalize(r["code"])
                    if code in by_code:
                        terms.setdefault(code, []).append(_clean(r["term"]))
        # Every name a code is found by: Vietnamese, English, then the search terms.
        self._names = [(d.display_vi, d.display_en, *terms.get(d.code, ())) for d in self._diagnoses]
        self._words = [tuple(tuple(_words(n)) for n in names) for names in self._names]
        self._cores = [tuple(_core_len(w) for w in words) for words in self._words]
        self._exact_vi = [frozenset(w for n in (names[0], *names[2:]) for w in _ACCENTED.findall(unicodedata.normalize("NFC", n.casefold())))
                          for names in self._names]
        postings: dict[str, set[int]] = {}
        for i, words in enumerate(self._words):
            for word in {w for ws in words for w in ws}:
                postings.setdefault(word, set()).add(i)
        self._vocab = sorted(postings)
        self._postings = {w: frozenset(ids) for w, ids in postings.items()}
        self._prefix_cache: dict[str, frozenset[int]] = {}
        # Cheap order used to cut a large match set to a pool before the full ranking.
        self._static = [(min(core for core in self._cores[i] if core) if any(self._cores[i]) else 99, not d.leaf, i)
                        for i, d in enumerate(self._diagnoses)]
        self._rules: dict[str, list[tuple[str, str, str]]] = {}  # code -> [(appendix, kind, value)]
        for r in _read_gz(rules_file) if rules_file else []:
            code = normalize(r["code"])
            if code:
                self._rules.setdefault(code, []).append((r["appendix"], r["kind"], r["value"]))
        self._daggers: dict[str, list[str]] = {}  # asterisk -> its daggers, in the list's order
        for r in _read_gz(pairs_file) if pairs_file else []:
            dagger, asterisk = normalize(r["dagger"]), normalize(r["asterisk"])
            if dagger and asterisk:
                self._daggers.setdefault(asterisk, []).append(dagger)

    def __len__(self) -> int:
        return len(self._diagnoses)

    def lookup(self, code: str) -> Diagnosis | None:
        canonical = normalize(code)
        return self._by_code.get(canonical) if canonical else None

    def check(self, code: str) -> str | None:
        if not (code or "").strip():
            return "an ICD-10 code is required"
        canonical = normalize(code)
        if canonical is None:
            return "an ICD-10 code is a letter, two digits and optionally a dot and 1-2 characters (e.g. J06.9, M01.30)"
        if canonical in self._by_code:
            return None
        return f"not a code of the ICD-10 list ({self.version})"

    # --- search ---------------------------------------------------------------------------------

    def _word_matches(self, prefix: str) -> frozenset[int]:
        cached = self._prefix_cache.get(prefix)
        if cached is not None:
            return cached
        lo = bisect.bisect_left(self._vocab, prefix)
        hi = bisect.bisect_left(self._vocab, prefix + "\x7f")
        found = frozenset().union(*(self._postings[w] for w in self._vocab[lo:hi]))
        if len(self._prefix_cache) < 4096:
            self._prefix_cache[prefix] = found
        return found

    @staticmethod
    def _fit(words: tuple[str, ...], core: int, query: list[str]) -> tuple[bool, bool, int]:
        """(not every query word is a whole word of the name, the words do not appear in order
        as a phrase, the name's other words but qualifiers); lower is better."""
        n = len(query)
        if not all(any(w.startswith(q) for w in words) for q in query):
            return (True, True, 999)
        whole = all(q in words for q in query)
        phrase = any(all(words[s + k].startswith(query[k]) for k in range(n)) for s in range(len(words) - n + 1))
        return (not whole, not phrase, max(core - n, 0))

    def search(self, text: str, limit: int = 20) -> list[Diagnosis]:
        if limit <= 0 or not (text or "").strip():
            return []
        typed = normalize_identifier(text).rstrip("*†+").replace(".", "")
        if _CODE_PREFIX.fullmatch(typed):
            lo = bisect.bisect_left(self._nodot, typed)
            hi = bisect.bisect_left(self._nodot, typed + "\x7f")
            if lo < hi:  # the exact code first, then leaf (billable) codes, then the rest, in code order
                order = sorted(range(lo, hi), key=lambda i: (self._nodot[i] != typed, not self._diagnoses[i].leaf, i))
                return [self._diagnoses[i] for i in order[:limit]]
            # nothing coded like that: fall through to words ("b12" is also a word in names)
        query = _words(text)  # repeated words kept for the phrase: "đau đầu" is not "đau"
        if not query:
            return []
        ids: frozenset[int] | None = None
        for word in sorted(set(query), key=len, reverse=True):  # the rarest (longest) word first
            matches = self._word_matches(word)
            ids = matches if ids is None else ids & matches
            if not ids:
                return []
        accents = [w for w in _ACCENTED.findall(unicodedata.normalize("NFC", text.casefold())) if fold_text(w) != w]

        def rank(i: int) -> tuple[Any, ...]:
            fit = min(self._fit(words, core, query) for words, core in zip(self._words[i], self._cores[i]))
            exact = not accents or all(w in self._exact_vi[i] for w in accents)  # "họng" before "hồng"
            return (not exact, *fit, not self._diagnoses[i].leaf, i)

        ids = ids or frozenset()
        if len(ids) > _POOL:  # a common word ("viêm", "bệnh"): rank the shortest names of each kind
            whole = ids.intersection(*(self._postings.get(q, frozenset()) for q in query))
            pool = heapq.nsmallest(_POOL, whole, key=self._static.__getitem__)
            pool += heapq.nsmallest(_POOL - len(pool), ids - whole, key=self._static.__getitem__)
        else:
            pool = list(ids)
        return [self._diagnoses[i] for i in heapq.nsmallest(limit, pool, key=rank)]

    # --- validity rules -------------------------------------------------------------------------

    def validate(self, codes: list[str], sex: str | None = None, age_days: int | None = None,
                 age_years: int | None = None) -> list[Problem]:
        """Problems of a visit's diagnoses, main first. `sex` is FHIR's gender ("male", "female";
        anything else is not checked); the age is checked only when given (completed years are
        estimated from `age_days` when `age_years` is not given)."""
        if age_years is None and age_days is not None:
            age_years = int(age_days // 365.2425)
        canonical = [normalize(c) for c in codes]
        present = {c for c in canonical if c}
        out: list[Problem] = []
        for index, code in enumerate(canonical):
            found = self._by_code.get(code) if code else None
            if found is None:
                out.append(Problem(index, "unknown", code or ""))
                continue
            for appendix, kind, value in self._rules.get(code, ()):
                if kind == "not_main" and index == 0:
                    out.append(Problem(index, "not_main", code, appendix))
                elif kind == "sex" and sex in ("male", "female") and sex != value:
                    out.append(Problem(index, f"{value}_only", code, appendix))
                elif kind == "age":
                    match = _AGE.fullmatch(value)
                    if not match:
                        continue
                    low, high, unit = int(match[1]) if match[1] else None, int(match[2]) if match[2] else None, match[3]
                    years = age_days if unit == "d" else age_years
                    if years is not None and ((low is not None and years < low) or (high is not None and years > high)):
                        out.append(Problem(index, "age", code, appendix, unit, low, high))
            if found.mark == "*" or code in self._daggers:
                daggers = self._daggers.get(code, [])
                others = [c for c in present - {code} if (self._by_code.get(c) or found).mark != "*"]
                if daggers and not present & set(daggers):
                    out.append(Problem(index, "asterisk_without_dagger", code, "A1", daggers=tuple(daggers[:5])))
                elif not daggers and not others:
                    out.append(Problem(index, "asterisk_alone", code, "A1"))
        return out


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
    """The diagnosis for a code of the list in any typed form ('e119', 'E11.9'), or None."""
    return index().lookup(code)


def search(text: str, limit: int = 20) -> list[Diagnosis]:
    """Picker search.

    A code prefix ('J0', 'j06.9', 'E11') matches codes: the exact code first, then leaf codes,
    then the rest, in code order. Otherwise every word must prefix-match a word of the Vietnamese
    or the English name, accent- and case-insensitively; ranked by: the accents typed match the
    Vietnamese name's, every word is a whole word, the words appear in order, fewest other words
    in the name, leaf codes, code order.
    """
    return index().search(text, limit)


def check(code: str) -> str | None:
    """An error message for a code that is not usable, or None. Messages never repeat the code."""
    return index().check(code)


def validate(codes: list[str], sex: str | None = None, age_days: int | None = None,
             age_years: int | None = None) -> list[Problem]:
    """The validity rules of QĐ 4469 broken by a visit's diagnoses (main first); see `Problem`."""
    return index().validate(codes, sex, age_days, age_years)


def name(code: str | None, lang: str | None = "vi") -> str | None:
    """The list's name of `code` in `lang`, or None when the code is not in the list."""
    found = lookup(code or "")
    return found.name(lang) if found else None


class CatalogueName(str):
    """A diagnosis name that is Vietnamese as a string (what the record holds) and renders in the
    page's language in a Jinja template (``__html__``), like Flask-Babel's lazy strings. The
    language comes from Flask-Babel when a request is being served, otherwise Vietnamese."""

    def __new__(cls, found: Diagnosis) -> "CatalogueName":
        obj = super().__new__(cls, found.display_vi)
        obj.diagnosis = found
        return obj

    def __html__(self) -> str:
        from markupsafe import escape

        lang = "vi"
        try:
            from flask import has_request_context
            from flask_babel import get_locale

            if has_request_context():
                lang = str(get_locale() or "vi")
        except ImportError:  # pragma: no cover - Flask is a dependency of the app
            pass
        return str(escape(self.diagnosis.name(lang)))


def concept_name(concept: Any) -> str | None:
    """The catalogue name (a `CatalogueName`) of a CodeableConcept's ICD-10 coding, or None."""
    for coding in (concept or {}).get("coding") or () if isinstance(concept, dict) else ():
        if coding.get("system") == SYSTEM:
            found = lookup(str(coding.get("code") or ""))
            if found:
                return CatalogueName(found)
    return None


# --- making the shipped files from the Ministry's sheets ------------------------------------------

# Fixes of the source's known defects (ehr/data/vn/README.md lists them): English names.
_EN_FIXES = {"I10": "Essential (primary) hypertension", "A97": "Dengue"}
_AGE_FILES = {  # appendix -> (file, age rule as inclusive bounds); A3.2-3.4 and A3.7-3.8 share a file
    "A3.1": ("appA3_1_newborn_0_365d.csv", "0-365d"), "A3.2": ("appA3_2_3_4_child_age_ranges.csv", "0-2y"),
    "A3.3": ("appA3_2_3_4_child_age_ranges.csv", "0-10y"), "A3.4": ("appA3_2_3_4_child_age_ranges.csv", "0-19y"),
    "A3.5": ("appA3_5_over_27d.csv", "28-d"), "A3.6": ("appA3_6_age_1y_plus.csv", "1-y"),
    "A3.7": ("appA3_7_8_puberty_obstetric.csv", "8-19y"), "A3.8": ("appA3_7_8_puberty_obstetric.csv", "9-60y"),
    "A3.9": ("appA3_9_adult.csv", "16-y"), "A3.10": ("appA3_10_over_30y.csv", "31-y"),
}


def _appendix_rows(path: Path) -> dict[str, list[str]]:
    """Codes of each "Phụ lục X" section of an appendix sheet (title lines and headers skipped)."""
    out: dict[str, list[str]] = {}
    section = ""
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.reader(fh):
            first = (row[0] if row else "").strip()
            title = re.match(r"Phụ lục ([A-Z][0-9.]*[0-9])", first)
            if title:
                section = title[1]
                continue
            if normalize(first) and section:
                out.setdefault(section, []).append(first)
    return out


def _write_gz(path: Path, header: list[str], rows: Iterable[list[str]]) -> int:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as fh:  # reproducible
        fh.write(buf.getvalue().encode("utf-8"))
    return count


def build_data(src: Path, out: Path = DATA) -> dict[str, int]:
    """Write the three shipped files from the sheets of QĐ 4469 (as in ../shared/data/vn/icd10)."""
    seen: dict[str, list[str]] = {}
    with open(src / "icd10_vn_qd4469_2020.csv", encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            code = normalize(r["MÃ BỆNH"])
            if code is None:
                continue
            mark = "*" if r["MÃ BỆNH"].strip().endswith("*") else "†" if r["MÃ BỆNH"].strip().endswith("†") else ""
            name_en = _EN_FIXES.get(code) or _clean(r["DISEASE NAME"])
            if code in seen:  # a category printed twice, with and without its mark: one row, the mark kept
                seen[code][1] = seen[code][1] or mark
                continue
            seen[code] = [code, mark, _clean(r["TÊN BỆNH"]), name_en]
    counts = {"codes": _write_gz(out / LIST_FILE.name, ["code", "mark", "name_vi", "name_en"],
                                 sorted(seen.values(), key=lambda r: r[0].replace(".", "")))}
    rules: list[list[str]] = []
    for appendix, codes in _appendix_rows(src / "appA2_not_main_diagnosis.csv").items():
        rules += [[appendix, normalize(c) or c, "not_main", ""] for c in codes]
    for fname, sex in (("appA4_1_female_only.csv", "female"), ("appA4_2_male_only.csv", "male")):
        for appendix, codes in _appendix_rows(src / fname).items():
            rules += [[appendix, normalize(c) or c, "sex", sex] for c in codes]
    for appendix, (fname, value) in _AGE_FILES.items():
        rules += [[appendix, normalize(c) or c, "age", value] for c in _appendix_rows(src / fname).get(appendix, [])]
    counts["rules"] = _write_gz(out / RULES_FILE.name, ["appendix", "code", "kind", "value"], rules)
    pairs: list[list[str]] = []
    with open(src / "appA1_dagger_asterisk_pairs.csv", encoding="utf-8", newline="") as fh:
        for row in csv.reader(fh):
            if len(row) >= 3 and normalize(row[0]) and normalize(row[2]):
                pairs.append([normalize(row[0]) or "", normalize(row[2]) or ""])
    counts["pairs"] = _write_gz(out / PAIRS_FILE.name, ["dagger", "asterisk"], pairs)
    return counts


def _bench() -> None:
    started = time.perf_counter()
    built = index()
    build_ms = (time.perf_counter() - started) * 1000
    print(f"build: {build_ms:.0f} ms ({len(built)} codes, {VERSION})")
    for query in ("tăng huyết áp", "tang huyet ap", "viêm", "benh", "diabetes", "J06"):
        runs = []
        for _ in range(200):
            t0 = time.perf_counter()
            search(query)
            runs.append((time.perf_counter() - t0) * 1000)
        print(f"search({query!r}): median {statistics.median(runs):.3f} ms, max {max(runs):.3f} ms, {len(search(query))} results")
    runs = []
    for _ in range(200):
        t0 = time.perf_counter()
        validate(["H36.0", "E11.3", "O80"], "male", 20)
        runs.append((time.perf_counter() - t0) * 1000)
    print(f"validate(3 codes): median {statistics.median(runs):.3f} ms")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "import":
        print(build_data(Path(sys.argv[2])))
    else:
        _bench()
