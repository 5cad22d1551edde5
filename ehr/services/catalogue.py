"""Catalogues as data: the drug list, the service/technique list and the lab-test list.

`import_file` loads a .csv or .xlsx file (layouts in `ehr.catalogue.layout` and README.md
"Catalogues") as a new version of its kind, in one transaction:

- The rows that pass the checks are imported; the others are listed in the report with their row
  number and reason (`ImportReport.rejected`): nothing is dropped silently.
- Versions are identified by the SHA-256 of the accepted rows in canonical form (kind, code and
  fields as sorted JSON), so importing the same list again, even re-saved or as .csv instead of
  .xlsx, changes nothing. Content that differs becomes a new version, which becomes the active one.
  Re-importing the content of an old version makes it active again.
- Old versions stay: a coding records the version label (`Coding.version`, see `coding`) and
  `get(..., version=label)` still finds the item it was coded with.

Catalogue rows are public reference data (drug names, prices, reference ranges), not personal
data, so they are stored in plaintext (`catalogue_versions`, `catalogue_rows`).

Reading: `search`/`get` work on the active version held in memory per process (one dict per kind
and database); every call checks with one indexed query that the active version is still the one
held, and reloads it when an import elsewhere changed it.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import json
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Union

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ehr.catalogue.layout import KINDS, CatalogueFileError, Rejected, count_rows, rows_of
from ehr.crypto.blind import fold_text
from ehr.fhir.dates import DEFAULT_ZONE
from ehr.store import repository
from ehr.store.access import INTERNAL
from ehr.store.runtime import Store
from ehr.store.schema import catalogue_rows, catalogue_versions
from ehr.store.uow import WriteConflict

__all__ = [
    "KINDS", "SYSTEMS", "CatalogueError", "CatalogueFileError", "Drug", "ImportReport", "LabTest", "Rejected", "Service",
    "Version", "active_version", "coding", "count_rows", "get", "import_file", "item_json", "load_samples", "search", "versions",
]

# The Coding.system of each catalogue (the version label goes in Coding.version).
SYSTEMS = {
    "drugs": "https://fhir.ehr-vn.org/CodeSystem/danh-muc-thuoc",
    "services": "https://fhir.ehr-vn.org/CodeSystem/dich-vu-ky-thuat",
    "labs": "https://fhir.ehr-vn.org/CodeSystem/xet-nghiem",
}
_BATCH = 500


class CatalogueError(ValueError):
    """An import that cannot be done (unknown kind, unreadable file, label taken)."""


@dataclass(frozen=True)
class Drug:
    code: str
    name: str
    ingredient: str
    ingredient_code: str | None
    strength: str | None
    form: str | None
    route: str | None
    registration: str | None
    bhyt: bool
    bhyt_ratio: int | None
    price: Decimal | None
    unit: str | None = None  # đơn vị tính (viên, ống, chai): what a prescribed quantity counts


@dataclass(frozen=True)
class Service:
    code: str
    name: str
    tier: str | None
    price: Decimal | None


@dataclass(frozen=True)
class LabTest:
    code: str
    name: str
    unit: str | None
    low: Decimal | None
    high: Decimal | None
    loinc: str | None


Item = Union[Drug, Service, LabTest]
_TYPES: dict[str, type] = {"drugs": Drug, "services": Service, "labs": LabTest}
_DECIMALS = {"price", "low", "high"}


@dataclass(frozen=True)
class Version:
    id: int
    kind: str
    label: str
    imported_at: int  # µs since the epoch
    source: str
    row_count: int
    sha256: str
    active: bool


@dataclass
class ImportReport:
    kind: str
    source: str
    version: str | None = None  # label of the version the file's content is (None: nothing accepted)
    created: bool = False  # a new version was made
    activated: bool = False  # the version became the active one by this import
    accepted: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    header_row: int = 0

    @property
    def ok(self) -> bool:
        return not self.rejected and self.version is not None

    def summary(self) -> str:
        lines = [f"{self.kind}: {self.source}: {self.accepted} rows accepted, {len(self.rejected)} rejected (header on row {self.header_row})"]
        if self.version is None:
            lines.append("nothing imported: no row passed the checks")
        elif self.created:
            lines.append(f"new version {self.version}, now active")
        elif self.activated:
            lines.append(f"same content as version {self.version}: made active again")
        else:
            lines.append(f"unchanged: version {self.version} already has this content and is active")
        if self.ignored_columns:
            lines.append("ignored columns: " + ", ".join(self.ignored_columns))
        lines += [f"row {r.row}{f' ({r.code})' if r.code else ''}: {r.reason}" for r in self.rejected]
        return "\n".join(lines)


# --- import ----------------------------------------------------------------------------------------


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise CatalogueError(f"unknown catalogue kind {kind!r} (one of: {', '.join(KINDS)})")


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in values.items()}


def _digest(kind: str, rows: list[dict[str, Any]]) -> str:
    canonical = [_jsonable(r) for r in sorted(rows, key=lambda r: r["code"])]
    text = json.dumps({"kind": kind, "rows": canonical}, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def import_file(store: Store, kind: str, path: Path, progress: Callable[[int], None] | None = None, *,
                label: str | None = None, now: int | None = None) -> ImportReport:
    """Import a catalogue file as a version of `kind` (see the module docstring). `progress` is
    called with the number of rows read since its last call. Raises CatalogueError when the file
    as a whole cannot be read (no header with the required columns, not .csv/.xlsx, not UTF-8)."""
    _check_kind(kind)
    path = Path(path)
    try:
        header, accepted, rejected = rows_of(kind, path, progress)
    except CatalogueFileError as exc:
        raise CatalogueError(str(exc)) from None
    except OSError as exc:
        raise CatalogueError(f"{path.name}: {exc.strerror or exc}") from None
    report = ImportReport(kind, path.name, accepted=len(accepted), rejected=rejected, ignored_columns=header.ignored,
                          header_row=header.row)
    if not accepted:
        return report
    rows = [values for _, values in accepted]
    sha = _digest(kind, rows)
    now = now if now is not None else time.time_ns() // 1000
    if label is not None and not (label := " ".join(label.split())):
        raise CatalogueError("the version label is empty")
    if label is not None and len(label) > 64:
        raise CatalogueError("the version label is longer than 64 characters")
    try:
        _store(store, kind, path.name, rows, sha, label, now, report)
    except (IntegrityError, WriteConflict):
        # Another import of the same content committed first: that version is the one.
        with store.reading(INTERNAL) as uow:
            found = uow.execute(select(catalogue_versions).where(catalogue_versions.c.kind == kind,
                                                                 catalogue_versions.c.sha256 == sha)).mappings().first()
        if found is None:
            raise CatalogueError(f"the version label {label!r} is already used by another {kind} version") from None
        report.version = found["label"]
    _forget(store, kind)
    return report


def _store(store: Store, kind: str, source: str, rows: list[dict[str, Any]], sha: str, label: str | None, now: int,
           report: ImportReport) -> None:
    v = catalogue_versions.c
    with store.writing(INTERNAL) as uow:
        repository.lock(uow, [store.blind.lock_key("catalogue", kind)])  # one import per kind at a time
        found = uow.execute(select(catalogue_versions).where(v.kind == kind, v.sha256 == sha)).mappings().first()
        if found is not None:
            report.version = found["label"]
            if not found["active"]:
                uow.execute(update(catalogue_versions).where(v.kind == kind, v.active.is_(True)).values(active=False))
                uow.execute(update(catalogue_versions).where(v.id == found["id"]).values(active=True))
                report.activated = True
            return
        if label is None:
            label = datetime.fromtimestamp(now / 1e6, DEFAULT_ZONE).strftime("%Y-%m-%d") + "." + sha[:8]
        taken = uow.execute(select(v.id).where(v.kind == kind, v.label == label)).first()
        if taken is not None:
            raise CatalogueError(f"the version label {label!r} is already used by another {kind} version")
        uow.execute(update(catalogue_versions).where(v.kind == kind, v.active.is_(True)).values(active=False))
        version_id = uow.execute(insert(catalogue_versions).values(
            kind=kind, label=label, imported_at=now, source=source[:255], row_count=len(rows), sha256=sha, active=True,
        )).inserted_primary_key[0]
        for start in range(0, len(rows), _BATCH):
            uow.execute(insert(catalogue_rows), [
                {"version_id": version_id, "code": r["code"], "kind": kind, "name": r["name"],
                 "data": json.dumps(_jsonable(r), ensure_ascii=False, sort_keys=True)}
                for r in rows[start:start + _BATCH]
            ])
        report.version, report.created, report.activated = label, True, True


def versions(store: Store, kind: str | None = None) -> list[Version]:
    """Every imported version (newest first), of one kind or all."""
    v = catalogue_versions.c
    stmt = select(catalogue_versions).order_by(v.kind, v.imported_at.desc(), v.id.desc())
    if kind is not None:
        _check_kind(kind)
        stmt = stmt.where(v.kind == kind)
    with store.reading(INTERNAL) as uow:
        return [Version(**{**row, "active": bool(row["active"])}) for row in uow.execute(stmt).mappings()]


# --- reading: the active version in memory ----------------------------------------------------------


@dataclass
class _Loaded:
    version_id: int
    sha256: str
    label: str
    items: dict[str, Item]  # folded code -> item
    entries: list[tuple[str, str, str, tuple[str, ...], Item]]  # folded code, folded name, haystack, words, item
    codes: list[tuple[str, int]] = field(default_factory=list)  # (folded code, entry), sorted
    words: list[tuple[str, int]] = field(default_factory=list)  # (folded word, entry), sorted

    def __post_init__(self) -> None:
        self.codes = sorted((e[0], n) for n, e in enumerate(self.entries))
        self.words = sorted((w, n) for n, e in enumerate(self.entries) for w in e[3])


_cache: dict[tuple[str, str], _Loaded] = {}
_loading = threading.Lock()


def _key(store: Store, kind: str) -> tuple[str, str]:
    return (store.engine.url.render_as_string(hide_password=True), kind)


def _forget(store: Store, kind: str) -> None:
    _cache.pop(_key(store, kind), None)


def _item(kind: str, data: dict[str, Any]) -> Item:
    cls = _TYPES[kind]
    names = {f.name for f in fields(cls)}
    values = {k: (Decimal(v) if k in _DECIMALS and v is not None else v) for k, v in data.items() if k in names}
    if kind == "drugs":
        values["bhyt"] = bool(values.get("bhyt"))
    return cls(**{n: values.get(n) for n in names})


def _words(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys("".join(c if c.isalnum() else " " for c in text).split()))


def _entry(kind: str, item: Item) -> tuple[str, str, str, tuple[str, ...], Item]:
    parts = [item.name]
    if isinstance(item, Drug):
        parts += [item.ingredient, item.strength or "", item.form or "", item.ingredient_code or ""]
    elif isinstance(item, LabTest):
        parts += [item.loinc or ""]
    hay = fold_text(" ".join(parts))
    return fold_text(item.code), fold_text(item.name), hay, _words(hay), item


def _active(store: Store, kind: str) -> _Loaded | None:
    _check_kind(kind)
    v = catalogue_versions.c
    with store.reading(INTERNAL) as uow:
        head = uow.execute(select(v.id, v.sha256, v.label).where(v.kind == kind, v.active.is_(True))
                           .order_by(v.id.desc()).limit(1)).first()
        key = _key(store, kind)
        if head is None:
            _cache.pop(key, None)
            return None
        held = _cache.get(key)
        if held is not None and held.version_id == head.id and held.sha256 == head.sha256:
            return held
        with _loading:
            held = _cache.get(key)
            if held is not None and held.version_id == head.id and held.sha256 == head.sha256:
                return held
            rows = uow.execute(select(catalogue_rows.c.data).where(catalogue_rows.c.version_id == head.id)).scalars().all()
            items = [_item(kind, json.loads(data)) for data in rows]
            loaded = _Loaded(head.id, head.sha256, head.label, {fold_text(i.code): i for i in items},
                             sorted((_entry(kind, i) for i in items), key=lambda e: (e[1], e[0])))
            _cache[key] = loaded
            return loaded


def active_version(store: Store, kind: str) -> str | None:
    """The label of the active version of `kind` (what a coding made now puts in Coding.version)."""
    loaded = _active(store, kind)
    return loaded.label if loaded else None


def get(store: Store, kind: str, code: str, *, version: str | None = None) -> Item | None:
    """The item of `code` in the active version, or in the version labelled `version` (a coding
    keeps the version it was made with). Codes compare without case."""
    if version is None:
        loaded = _active(store, kind)
        return loaded.items.get(fold_text(code.strip())) if loaded else None
    _check_kind(kind)
    v, r = catalogue_versions.c, catalogue_rows.c
    with store.reading(INTERNAL) as uow:
        data = uow.execute(select(r.data).join(catalogue_versions, v.id == r.version_id)
                           .where(v.kind == kind, v.label == version, func.lower(r.code) == code.strip().lower())).scalar()
    return _item(kind, json.loads(data)) if data is not None else None


def search(store: Store, kind: str, q: str, limit: int = 15) -> list[Item]:
    """Items of the active version matching `q`, accent- and case-insensitively, by code or words:
    exact code first, then code prefix, name prefix, every word a word prefix, then substrings;
    shorter names first within a rank."""
    query = fold_text(q or "")
    loaded = _active(store, kind) if query else None
    if not loaded or limit <= 0:
        return []
    tokens = _words(query) or (query,)
    entries = loaded.entries
    ranks: dict[int, int] = {}
    for n in _prefixed(loaded.codes, query, cap=max(limit, 50)):  # exact code, then code prefix
        ranks[n] = 0 if entries[n][0] == query else 1
    matched: set[int] | None = None  # entries with a word starting with every token
    for token in sorted(tokens, key=len, reverse=True):
        found = set(_prefixed(loaded.words, token))
        matched = found if matched is None else matched & found
        if not matched:
            break
    for n in matched or ():
        if n not in ranks:
            ranks[n] = 2 if entries[n][1].startswith(query) else 3
    if len(ranks) < limit and len(query) >= 3:  # the slow path only when prefixes found too little
        for n, entry in enumerate(entries):
            if n not in ranks and all(t in entry[2] for t in tokens):
                ranks[n] = 4
    best = heapq.nsmallest(limit, ranks.items(), key=lambda r: (r[1], len(entries[r[0]][1]), r[0]))
    return [entries[n][4] for n, _ in best]


def _prefixed(pairs: list[tuple[str, int]], prefix: str, cap: int | None = None) -> list[int]:
    """Entries of the sorted (text, entry) pairs whose text starts with `prefix` (at most `cap`)."""
    start = bisect.bisect_left(pairs, (prefix, -1))
    end = bisect.bisect_left(pairs, (prefix[:-1] + chr(ord(prefix[-1]) + 1), -1), lo=start)
    if cap is not None:
        end = min(end, start + cap)
    return [n for _, n in pairs[start:end]]


def item_json(item: Item) -> dict[str, Any]:
    """The item as JSON for a form (decimals as strings, `display` ready to show)."""
    out = _jsonable(asdict(item))
    display = item.name
    if isinstance(item, Drug) and item.strength and fold_text(item.strength) not in fold_text(item.name):
        display = f"{item.name} {item.strength}"
    out["display"] = display
    return out


def coding(store: Store, kind: str, code: str) -> dict[str, str] | None:
    """A FHIR Coding of `code` in the active version (system, version, code, display), or None."""
    loaded = _active(store, kind)
    item = loaded.items.get(fold_text(code.strip())) if loaded else None
    if item is None or loaded is None:
        return None
    return {"system": SYSTEMS[kind], "version": loaded.label, "code": item.code, "display": item_json(item)["display"]}


SAMPLES = Path(__file__).resolve().parents[1] / "data" / "catalogues"


def load_samples(store: Store) -> list[ImportReport]:
    """Import the shipped synthetic sample lists (demo and tests); a no-op once they are in."""
    return [import_file(store, kind, SAMPLES / f"{kind}.csv") for kind in KINDS]
