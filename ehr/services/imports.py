"""`flask ehr import`: load FHIR bundles (transaction, batch, collection) and ndjson files.

Idempotent and resumable: a plain POST becomes a PUT with an id derived from the file's SHA-256
and the entry's position (uuid5), so loading a file twice never duplicates anything; progress is
recorded per file in the database after each committed batch, and a resumed run starts there.
Transaction bundles stay atomic (a failing entry rejects the bundle); batch bundles and ndjson go
in batches, and a resource refused because it references one not loaded yet is retried once at
the end of the run. Every rejected resource is reported with its position and the reason.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ehr.store.access import INTERNAL
from ehr.fhir import jsonio
from ehr.fhir.outcomes import FhirError
from ehr.services import bundles
from ehr.services.context import AccessContext
from ehr.store import exports
from ehr.store.keys import now_us
from ehr.store.runtime import Store

NAMESPACE = uuid.UUID("6f0e5a8e-3c1d-4b7a-9a55-0d2f4a1e7c11")
Progress = Callable[[int], None]


@dataclass
class Rejection:
    position: int  # entry index or line number (0-based)
    reason: str


@dataclass
class FileReport:
    name: str
    kind: str
    total: int
    loaded: int = 0
    already: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    key: str = ""
    deferred_from: int | None = None  # first position waiting for the end-of-run retry


@dataclass
class _Retry:
    report: FileReport
    position: int
    entry: dict[str, Any]


def _diagnostics(outcome: dict[str, Any] | None) -> str:
    """The first issue, with the element it names (no submitted values: outcomes never carry any)."""
    issues = (outcome or {}).get("issue") or [{}]
    where = issues[0].get("expression") or []
    return str(issues[0].get("diagnostics", "rejected")) + (f" ({', '.join(where)})" if where else "")


def _stable_id(file_key: str, position: int) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{file_key}:{position}"))


def _idempotent(entry: dict[str, Any], file_key: str, position: int) -> dict[str, Any]:
    """POST without ifNoneExist -> PUT Type/<stable id>; fullUrls keep pointing at it."""
    request = entry.get("request") or {}
    resource = entry.get("resource") or {}
    if request.get("method") == "POST" and not request.get("ifNoneExist") and isinstance(resource, dict):
        rid = _stable_id(file_key, position)
        rtype = resource.get("resourceType")
        return {**entry, "resource": {**resource, "id": rid}, "request": {"method": "PUT", "url": f"{rtype}/{rid}"}}
    return entry


def _collection_entry(entry: dict[str, Any], file_key: str, position: int) -> dict[str, Any]:
    resource = entry.get("resource") or {}
    full_url = str(entry.get("fullUrl") or "")
    if isinstance(resource.get("id"), str) and not full_url.startswith("urn:"):
        return {**entry, "request": {"method": "PUT", "url": f"{resource.get('resourceType')}/{resource['id']}"}}
    return _idempotent({**entry, "request": {"method": "POST", "url": str(resource.get("resourceType"))}}, file_key, position)


class Importer:
    def __init__(self, store: Store, ctx: AccessContext, batch: int = 500, progress: Progress | None = None) -> None:
        self.store, self.ctx, self.batch = store, ctx, batch
        self.progress = progress or (lambda n: None)
        self.retries: list[_Retry] = []

    # --- progress in the database ----------------------------------------------------------

    def _state(self, key: str) -> dict[str, Any] | None:
        with self.store.reading(INTERNAL) as uow:
            return exports.import_state(uow, key)

    def _save(self, report: FileReport, position: int, done: bool) -> None:
        """Checkpoint a file; a position waiting for the retry holds the checkpoint back, so an
        interrupted run loads it again (idempotently) instead of forgetting it."""
        if report.deferred_from is not None:
            position, done = min(position, report.deferred_from), False
        with self.store.writing(INTERNAL) as uow:
            exports.save_import_state(uow, report.key, report.name, position, report.total, done, now_us())

    def _defer(self, report: FileReport, position: int, entry: dict[str, Any]) -> None:
        self.retries.append(_Retry(report, position, entry))
        report.deferred_from = position if report.deferred_from is None else min(report.deferred_from, position)

    # --- files ---------------------------------------------------------------------------------

    def run(self, paths: list[Path]) -> list[FileReport]:
        reports = [self.load(path) for path in paths]
        self._retry()
        return reports

    def count_units(self, path: Path) -> int:
        data = path.read_bytes()
        if path.suffix == ".ndjson":
            return sum(1 for line in data.splitlines() if line.strip())
        try:
            return len(jsonio.parse_json(data).get("entry") or [])
        except (FhirError, AttributeError):
            return 1

    def load(self, path: Path) -> FileReport:
        data = path.read_bytes()
        key = hashlib.sha256(data).hexdigest()
        state = self._state(key)
        if path.suffix == ".ndjson":
            items = [line for line in data.splitlines() if line.strip()]
            report = FileReport(path.name, "ndjson", len(items), key=key)
        else:
            try:
                doc = jsonio.parse_json(data)
            except FhirError as exc:
                report = FileReport(path.name, "invalid", 1, rejected=[Rejection(0, exc.issues[0].diagnostics)])
                self.progress(1)
                return report
            if not isinstance(doc, dict) or doc.get("resourceType") != "Bundle" or doc.get("type") not in ("transaction", "batch", "collection"):
                self.progress(1)
                return FileReport(path.name, "invalid", 1, rejected=[Rejection(0, "not a transaction, batch or collection Bundle")])
            items = doc.get("entry") or []
            report = FileReport(path.name, str(doc["type"]), len(items), key=key)
        start = 0
        if state:
            start = state["position"]
            report.already = start
            self.progress(start)
            if state["done"]:
                return report
        if report.kind == "ndjson":
            self._ndjson(key, report, items, start)
        elif report.kind == "batch":
            self._chunks(report, [_idempotent(e, key, i) for i, e in enumerate(items)], start)
        else:
            entries = [_idempotent(e, key, i) if report.kind == "transaction" else _collection_entry(e, key, i) for i, e in enumerate(items)]
            self._transaction(report, entries)
        return report

    def _transaction(self, report: FileReport, entries: list[dict[str, Any]]) -> None:
        try:
            bundles.ingest_transaction(self.store, self.ctx, {"resourceType": "Bundle", "type": "transaction", "entry": entries})
            report.loaded = len(entries)
        except FhirError as exc:
            diag = exc.issues[0].diagnostics
            position = int(diag.split()[1].rstrip(":")) if diag.startswith("entry ") else 0
            report.rejected.append(Rejection(position, _diagnostics({"issue": [i.to_fhir() for i in exc.issues]})))
        self._save(report, len(entries), True)
        self.progress(len(entries))

    def _chunks(self, report: FileReport, entries: list[dict[str, Any]], start: int) -> None:
        for first in range(start, len(entries), self.batch):
            chunk = entries[first : first + self.batch]
            results = bundles.batch(self.store, self.ctx, {"resourceType": "Bundle", "type": "batch", "entry": chunk}, representation=False)
            for offset, (entry, result) in enumerate(zip(chunk, results)):
                if result.status < 400:
                    report.loaded += 1
                elif result.status == 422 and "does not exist" in _diagnostics(result.outcome):
                    self._defer(report, first + offset, entry)
                else:
                    report.rejected.append(Rejection(first + offset, _diagnostics(result.outcome)))
            self._save(report, first + len(chunk), first + len(chunk) >= len(entries))
            self.progress(len(chunk))

    def _ndjson(self, key: str, report: FileReport, lines: list[bytes], start: int) -> None:
        entries: list[dict[str, Any]] = []
        for number, line in enumerate(lines):
            try:
                resource = jsonio.parse_resource(line)
            except FhirError as exc:
                entries.append({"_error": exc.issues[0].diagnostics})
                continue
            rid = resource.get("id") if isinstance(resource.get("id"), str) else _stable_id(key, number)
            resource["id"] = rid
            entries.append({"resource": resource, "request": {"method": "PUT", "url": f"{resource['resourceType']}/{rid}"}})
        for number, entry in enumerate(entries):
            if "_error" in entry and number >= start:
                report.rejected.append(Rejection(number, entry["_error"]))
        valid = [(n, e) for n, e in enumerate(entries) if "_error" not in e]
        for first in range(start, len(entries), self.batch):
            chunk = [(n, e) for n, e in valid if first <= n < first + self.batch]
            try:
                bundles.ingest_transaction(self.store, self.ctx, {"resourceType": "Bundle", "type": "transaction", "entry": [e for _, e in chunk]})
                report.loaded += len(chunk)
            except FhirError:
                # One bad line must not sink its neighbours: take the batch one resource at a time.
                self._one_by_one(report, chunk)
            self._save(report, min(first + self.batch, len(entries)), first + self.batch >= len(entries))
            self.progress(min(self.batch, len(entries) - first))

    def _one_by_one(self, report: FileReport, chunk: list[tuple[int, dict[str, Any]]]) -> None:
        results = bundles.batch(self.store, self.ctx, {"resourceType": "Bundle", "type": "batch", "entry": [e for _, e in chunk]}, representation=False)
        for (number, entry), result in zip(chunk, results):
            if result.status < 400:
                report.loaded += 1
            elif result.status == 422 and "does not exist" in _diagnostics(result.outcome):
                self._defer(report, number, entry)
            else:
                report.rejected.append(Rejection(number, _diagnostics(result.outcome)))

    def _retry(self) -> None:
        """Once more, now that every file is in: references to resources loaded later resolve."""
        pending, self.retries = self.retries, []
        if not pending:
            return
        results = bundles.batch(self.store, self.ctx, {"resourceType": "Bundle", "type": "batch", "entry": [r.entry for r in pending]}, representation=False)
        for item, result in zip(pending, results):
            if result.status < 400:
                item.report.loaded += 1
            else:
                item.report.rejected.append(Rejection(item.position, _diagnostics(result.outcome)))
        for report in {id(item.report): item.report for item in pending}.values():
            report.deferred_from = None
            self._save(report, report.total, True)


def summary(reports: list[FileReport]) -> str:
    lines = []
    for r in reports:
        lines.append(f"{r.name}: {r.kind}, {r.total} entries, {r.loaded} loaded, {r.already} already loaded, {len(r.rejected)} rejected")
        lines += [f"  rejected #{x.position}: {x.reason}" for x in r.rejected]
    return "\n".join(lines)

