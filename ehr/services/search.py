"""FHIR search: resolve a parsed query against the declared parameters into an index plan, run it,
page it, add includes, and shape the results. No resource is decrypted to decide a match.

Unknown parameters are ignored and reported in an OperationOutcome entry (lenient, the FHIR
default) or refused with 400 under `Prefer: handling=strict`. Malformed values answer 400 naming
the parameter. Modifiers the privacy design cannot answer (`:contains`, sorting on blind-indexed
parameters) answer 400 saying why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ehr.crypto.blind import fold_text
from ehr.fhir import dates, jsonio
from ehr.fhir import query as q
from ehr.fhir import references as refs
from ehr.fhir.outcomes import FhirError, Issue, bad_request
from ehr.fhir.resources import SERVED_TYPES, is_valid_id
from ehr.fhir.searchparams import COMMON, SearchParam, registry
from ehr.fhir.summary import apply_elements, apply_summary
from ehr.services import indexing
from ehr.services.context import AccessContext
from ehr.services import auditing, costs, policy
from ehr.services.policy import authorize
from ehr.services.common import check_type
from ehr.store import access, repository
from ehr.store.access import Restriction
from ehr.store import search as s
from ehr.store.keys import now_us
from ehr.store.repository import StoredVersion
from ehr.store.runtime import CursorError, Store
from ehr.store.uow import UnitOfWork

MAX_INCLUDES = 1000  # the default of costs.Costs.includes (per page)
_TABLE_OF_TYPE = {"token": "token", "string": "string", "date": "date", "number": "number", "quantity": "number", "reference": "reference"}


@dataclass
class SearchPage:
    entries: list[tuple[StoredVersion, str]]  # (resource, "match" | "include")
    total: int | None
    next_token: str | None
    self_token: str
    issues: list[Issue] = field(default_factory=list)
    previous_token: str | None = None


class _Resolver:
    """Turns clauses into plan criteria for one resource type."""

    def __init__(self, store: Store, strict: bool, issues: list[Issue], restriction: Restriction | None, ctx: AccessContext | None = None) -> None:
        self.store = store
        self.strict = strict
        self.issues = issues
        self.restriction = restriction
        self.ctx = ctx  # chains and _has test other types: the context must be allowed to search them
        self.today = date.today()

    def searchable(self, resource_type: str) -> None:
        if self.ctx is not None:
            authorize(self.ctx, "search", resource_type)

    def unknown(self, name: str) -> None:
        if self.strict:
            raise bad_request(f"unknown search parameter '{name[:64]}'", name[:64])
        self.issues.append(Issue("not-supported", f"unknown search parameter '{name[:64]}' was ignored", severity="warning"))

    def plan(self, resource_type: str, clauses: list[q.Clause]) -> s.Plan:
        plan = s.Plan(resource_type, restriction=self.restriction)
        for clause in clauses:
            for criterion in self.clause(resource_type, clause):
                plan.criteria.append(criterion)
        return plan

    def clause(self, rtype: str, c: q.Clause) -> list[s.Criterion]:
        if c.code == "_has":
            assert c.has is not None
            return [self.has(rtype, c)]
        if c.code == "_id":
            if c.modifier not in (None, "not") or c.chain:
                raise bad_request("_id supports only :not", c.raw_name[:64])
            ids = [q.unescape(v) for v in c.values]
            if not all(is_valid_id(i) for i in ids):
                raise bad_request("_id must be valid resource ids", "_id")
            return [s.Criterion([s.IdMatch(tuple(ids))], negate=c.modifier == "not")]
        if c.code == "_lastUpdated":
            if c.modifier or c.chain:
                raise bad_request("_lastUpdated takes no modifier", c.raw_name[:64])
            return [s.Criterion([self.updated(v) for v in c.values])]
        param = registry().get(rtype, c.code)
        if param is None:
            if c.code.startswith("_"):
                raise bad_request(f"search parameter '{c.code[:64]}' is not supported", c.code[:64])
            self.unknown(c.raw_name or c.code)
            return []
        if c.chain is not None:
            return [self.chain(rtype, param, c)]
        return self.typed(rtype, param, c)

    # --- per parameter type ---------------------------------------------------------------

    def typed(self, rtype: str, p: SearchParam, c: q.Clause) -> list[s.Criterion]:
        mod = c.modifier
        if mod == "missing":
            value = c.values[0] if len(c.values) == 1 else ""
            if value not in ("true", "false"):
                raise bad_request(":missing takes true or false", p.code)
            table = "token" if p.mode == "blind-buckets" else _TABLE_OF_TYPE[p.type]
            return [s.Criterion([s.Present(table, p.code)], negate=value == "true")]
        if mod == "contains":
            raise bad_request(
                f"{p.code}:contains is not supported: this parameter is indexed as keyed hashes of prefixes "
                "(privacy), which can answer starts-with and :exact but not contains",
                p.code,
            )
        declared = {"of-type": "ofType"}.get(mod or "", mod)
        if mod is not None and declared not in p.modifiers and not (p.type == "reference" and mod in (p.targets or SERVED_TYPES)):
            raise bad_request(f"modifier :{mod[:32]} is not supported on {p.code}", p.code)
        if p.type == "token":
            if mod == "text":
                return self.token_text(rtype, p, c.values)
            if mod == "of-type" or mod == "ofType":
                return [s.Criterion([self.of_type(rtype, p, v) for v in c.values])]
            return [s.Criterion([self.token(rtype, p, v) for v in c.values], negate=mod == "not")]
        if p.type == "string":
            return [s.Criterion([self.string(rtype, p, v, exact=mod == "exact") for v in c.values])]
        if p.type == "date":
            alternatives: list[s.Match] = []
            for v in c.values:
                alternatives += self.date(rtype, p, v)
            return [s.Criterion(alternatives)]
        if p.type in ("number", "quantity"):
            return [s.Criterion([self.number(p, v) for v in c.values])]
        if p.type == "reference":
            return [s.Criterion([self.reference(p, v, mod) for v in c.values])]
        raise bad_request(f"parameter type {p.type} is not supported", p.code)

    def token(self, rtype: str, p: SearchParam, raw: str) -> s.TokenMatch:
        parts = q.split_escaped(raw, "|")
        if len(parts) > 2:
            raise bad_request(f"{p.code}: a token is code, system|code, |code or system|", p.code)
        system = q.unescape(parts[0]) if len(parts) == 2 else None
        code = q.unescape(parts[-1]) or None
        if system is not None and system == "" and code is None:
            raise bad_request(f"{p.code}: '|' alone is not a token", p.code)
        if code is None:
            return s.TokenMatch(p.code, system=system)
        if p.blind:
            return s.TokenMatch(p.code, system=system, hash=indexing.blind_token(self.store, rtype, p.code, code))
        return s.TokenMatch(p.code, system=system, code=code)

    def of_type(self, rtype: str, p: SearchParam, raw: str) -> s.TokenMatch:
        parts = [q.unescape(x) for x in q.split_escaped(raw, "|")]
        if p.code != "identifier" or len(parts) != 3 or not parts[1] or not parts[2]:
            raise bad_request(":of-type takes type-system|type-code|value on identifier", p.code)
        return s.TokenMatch(f"{p.code}:of-type", system=parts[0] or None, code=parts[1], hash=indexing.blind_token(self.store, rtype, p.code, parts[2]))

    def token_text(self, rtype: str, p: SearchParam, values: list[str]) -> list[s.Criterion]:
        limit = costs.current().text_words
        if sum(len(v) for v in values) > limit * 64:  # before folding: folding a huge value is itself the cost
            raise bad_request(f"{p.code}:text takes at most {limit} words", p.code)
        words_per_value = [fold_text(q.unescape(v)).split() for v in values]
        if sum(len(w) for w in words_per_value) > limit:
            # Every word is one more index join: a 200-word query took 12 s.
            raise bad_request(f"{p.code}:text takes at most {limit} words", p.code)
        if any(not words for words in words_per_value):
            raise bad_request(f"{p.code}:text needs some text", p.code)
        if len(values) > 1 and any(len(w) > 1 for w in words_per_value):
            raise bad_request(f"{p.code}:text with several values takes one word per value", p.code)
        if len(values) > 1:
            return [s.Criterion([s.StringMatch(p.code, "w", indexing.string_hash(self.store, rtype, p.code, "w", w[0])) for w in words_per_value])]
        return [s.Criterion([s.StringMatch(p.code, "w", indexing.string_hash(self.store, rtype, p.code, "w", w))]) for w in words_per_value[0]]

    def string(self, rtype: str, p: SearchParam, raw: str, exact: bool) -> s.StringMatch:
        limit = costs.current().string_chars
        if len(raw) > limit:
            raise bad_request(f"{p.code}: a search string has at most {limit} characters", p.code)
        text = q.unescape(raw)
        if exact:
            return s.StringMatch(p.code, "e", indexing.string_hash(self.store, rtype, p.code, "e", indexing.exact_form(text)))
        folded = fold_text(text)[: indexing.MAX_PREFIX]
        if not folded:
            raise bad_request(f"{p.code}: the search string is empty", p.code)
        return s.StringMatch(p.code, "p", indexing.string_hash(self.store, rtype, p.code, "p", folded))

    def date(self, rtype: str, p: SearchParam, raw: str) -> list[s.Match]:
        prefix, value = dates.split_prefix(q.unescape(raw))
        if prefix not in p.comparators:
            raise bad_request(f"{p.code}: prefix {prefix} is not supported", p.code)
        try:
            if p.mode == "blind-buckets":
                buckets = dates.bucket_query(prefix, value, self.today)
                return [s.TokenMatch(p.code, hash=self.store.blind.token(indexing.purpose(rtype, p.code), b)) for b in buckets]
            low, high = dates.value_range(value)
        except dates.DateFormatError:
            raise bad_request(f"{p.code}: not a valid date (e.g. 2026, 2026-01, 2026-01-31, 2026-01-31T08:00:00+07:00)", p.code) from None
        if prefix == "ap":
            low, high = dates.approx_widen(low, high, now_us())
        return [s.DateMatch(p.code, prefix, low, high)]

    def updated(self, raw: str) -> s.UpdatedMatch:
        prefix, value = dates.split_prefix(q.unescape(raw))
        try:
            low, high = dates.value_range(value)
        except dates.DateFormatError:
            raise bad_request("_lastUpdated: not a valid date or instant", "_lastUpdated") from None
        if prefix == "ap":
            low, high = dates.approx_widen(low, high, now_us())
        return s.UpdatedMatch(prefix, low, high)

    def number(self, p: SearchParam, raw: str) -> s.NumberMatch:
        parts = [q.unescape(x) for x in q.split_escaped(raw, "|")]
        if (p.type == "number" and len(parts) != 1) or len(parts) not in (1, 3):
            raise bad_request(f"{p.code}: expected [prefix]number" + ("|system|code" if p.type == "quantity" else ""), p.code)
        prefix, number = dates.split_prefix(parts[0])
        if prefix not in p.comparators:
            raise bad_request(f"{p.code}: prefix {prefix} is not supported", p.code)
        try:
            value, low, high = dates.decimal_range(number)
        except ValueError:
            raise bad_request(f"{p.code}: not a valid number", p.code) from None
        system = parts[1] or None if len(parts) == 3 else None
        code = parts[2] or None if len(parts) == 3 else None
        return s.NumberMatch(p.code, prefix, float(value), float(low), float(high), system, code)

    def reference(self, p: SearchParam, raw: str, modifier: str | None) -> s.RefMatch:
        value = q.unescape(raw)
        parsed = refs.parse(value, self.store.base_urls)
        if parsed.kind == "local":
            target_type, target_id = parsed.resource_type, parsed.logical_id
        elif is_valid_id(value):
            target_type, target_id = None, value
        else:
            raise bad_request(f"{p.code}: expected Type/id or id", p.code)
        if modifier:
            if target_type and target_type != modifier:
                raise bad_request(f"{p.code}: the type modifier and the reference disagree", p.code)
            target_type = modifier
        if target_type and p.targets and target_type not in p.targets:
            raise bad_request(f"{p.code} cannot refer to that resource type", p.code)
        if target_type is None and len(p.targets) == 1:
            target_type = p.targets[0]  # lets the target index (type, id, param) drive the query
        return s.RefMatch(p.code, target_type, target_id)

    def chain(self, rtype: str, p: SearchParam, c: q.Clause) -> s.Criterion:
        assert c.chain is not None
        if p.type != "reference":
            raise bad_request(f"{p.code} is not a reference; it cannot be chained", p.code)
        targets = [c.modifier] if c.modifier else list(p.targets)
        usable = [t for t in targets if t in SERVED_TYPES and (c.chain.code in COMMON or c.chain.code == "_has" or registry().get(t, c.chain.code))]
        if not usable:
            raise bad_request(f"{p.code}.{c.chain.code[:64]}: no target type has that parameter", p.code)
        for target in usable:
            self.searchable(target)
        return s.Criterion([s.RefMatch(p.code, t, None, self.plan(t, [c.chain])) for t in usable])

    def has(self, rtype: str, c: q.Clause) -> s.Criterion:
        h = c.has
        assert h is not None
        if h.source_type not in SERVED_TYPES:
            raise bad_request("_has names a resource type that is not served", "_has")
        ref = registry().get(h.source_type, h.param)
        if ref is None or ref.type != "reference" or (ref.targets and rtype not in ref.targets):
            raise bad_request(f"_has: {h.source_type}.{h.param[:64]} is not a reference to {rtype}", "_has")
        self.searchable(h.source_type)
        return s.Criterion([s.HasMatch(h.source_type, h.param, self.plan(h.source_type, [h.inner]))])


def _sort_keys(rtype: str, sort: list[tuple[str, bool]]) -> list[s.SortKey]:
    keys = []
    for code, descending in sort:
        if code == "_lastUpdated":
            keys.append(s.SortKey("lastUpdated", code, descending))
        elif code == "_id":
            keys.append(s.SortKey("id", code, descending))
        else:
            p = registry().get(rtype, code)
            if p is None:
                raise bad_request(f"_sort: unknown parameter '{code[:64]}'", "_sort")
            if not p.sortable:
                why = "it is indexed as keyed hashes (privacy)" if p.blind else f"{p.type} parameters keep no order"
                raise bad_request(f"_sort on {code} is not supported: {why}", "_sort")
            keys.append(s.SortKey({"date": "date", "token": "token"}.get(p.type, "number"), code, descending))
    return keys


def _shape(version: StoredVersion, query: q.SearchQuery) -> StoredVersion:
    if not (query.elements or query.summary in ("true", "text", "data")) or version.body is None:
        return version
    doc = jsonio.loads_stored(version.body)
    doc = apply_elements(doc, query.elements) if query.elements else apply_summary(doc, query.summary or "false")
    return StoredVersion(version.resource_type, version.logical_id, version.version_id, version.last_updated, version.method, False, jsonio.dumps(doc))


def _includes(
    uow: UnitOfWork, store: Store, ctx: AccessContext, rtype: str, ids: list[str], query: q.SearchQuery, issues: list[Issue]
) -> list[StoredVersion]:
    found: dict[tuple[str, str], None] = {}
    cap = costs.current().includes
    seen = {(rtype, i) for i in ids}
    frontier: dict[str, list[str]] = {rtype: list(ids)}
    for depth in range(4):
        added: list[tuple[str, str]] = []
        for inc in query.includes:
            if depth > 0 and not inc.iterate:
                continue
            if inc.reverse:
                if inc.target_type and inc.target_type not in frontier:
                    continue
                targets = [(t, i) for t, page in frontier.items() for i in page if not inc.target_type or t == inc.target_type]
                added += s.referrers_to(uow, inc.source_type, inc.param, targets)
            elif inc.source_type in frontier:
                param = "_ref" if inc.param == "*" else inc.param
                added += s.targets_of(uow, inc.source_type, frontier[inc.source_type], param, inc.target_type)
        # Only types the context may read, and never through what the principal cannot see
        # (:iterate would reveal the links).
        fresh = [key for key in dict.fromkeys(added) if key not in seen and policy.may(ctx, "read", key[0])]
        if fresh and uow.access.restriction is not None:
            visible = access.visible_keys(uow, uow.access.restriction, fresh)
            fresh = [key for key in fresh if key in visible]
        if not fresh:
            break
        if len(found) + len(fresh) > cap:
            # Stop the fan-out here (`_include=*` with :iterate grows geometrically): one more
            # than the cap is enough to say that some were left out.
            fresh = fresh[: cap + 1 - len(found)]
        for key in fresh:
            seen.add(key)
            found[key] = None
        if len(found) > cap:
            break
        frontier = {}
        for t, i in fresh:
            frontier.setdefault(t, []).append(i)
    wanted = list(found)
    if len(wanted) > cap:
        issues.append(Issue("too-costly", f"only the first {cap} included resources are returned", severity="warning"))
        wanted = wanted[:cap]
    read = repository.read_many(uow, store.keys, wanted)
    return [read[key] for key in wanted if key in read]


def _validate_includes(rtype: str, query: q.SearchQuery) -> None:
    for inc in query.includes:
        if inc.source_type not in SERVED_TYPES or (inc.target_type and inc.target_type not in SERVED_TYPES):
            raise bad_request("_include/_revinclude names a type that is not served", "_revinclude" if inc.reverse else "_include")
        if inc.param != "*":
            p = registry().get(inc.source_type, inc.param)
            if p is None or p.type != "reference":
                raise bad_request(f"{inc.source_type}:{inc.param[:64]} is not a reference search parameter", "_include")
        if not inc.reverse and not inc.iterate and inc.source_type != rtype:
            raise bad_request("_include must start from the searched type (or use :iterate)", "_include")


_PREVIOUS_PAGES = 20


def search(store: Store, ctx: AccessContext, resource_type: str, params: list[tuple[str, str]], strict: bool = False) -> SearchPage:
    check_type(resource_type)
    authorize(ctx, "search", resource_type)
    gate = policy.gate(ctx)
    after: list[Any] | None = None
    earlier: list[Any] = []  # the `after` cursors of the pages before this one (for `previous`)
    truncated = False
    page_param = next((v for n, v in params if n == "_page"), None)
    if page_param:
        # A page link carries only the token: the query travels inside it, encrypted.
        try:
            payload = store.open_cursor(page_param)
            if payload.get("t") != resource_type:
                raise CursorError("another type")
            params = [(str(n), str(v)) for n, v in payload["q"]]  # type: ignore[union-attr]
            after = payload.get("a")  # type: ignore[assignment]
            earlier = list(payload.get("p") or [])  # type: ignore[arg-type]
            truncated = bool(payload.get("x"))
        except (CursorError, KeyError, TypeError, ValueError):
            raise bad_request("the paging token is not valid or has expired", "_page") from None
    query = q.parse([(n, v) for n, v in params if n != "_page"])
    issues: list[Issue] = []
    plan = _Resolver(store, strict, issues, gate.restriction, ctx).plan(resource_type, query.clauses)
    keys = _sort_keys(resource_type, query.sort)
    _validate_includes(resource_type, query)
    stored_params = [(n, v) for n, v in params if n not in ("_page", "_format", "_pretty")]
    self_token = store.sign_cursor({"t": resource_type, "q": stored_params, "a": after, "p": earlier, "x": truncated})
    previous_token = None
    if after is not None and (earlier or not truncated):
        # Keyset paging goes forward only; the token remembers where the earlier pages began.
        previous_token = store.sign_cursor({"t": resource_type, "q": stored_params, "a": earlier[-1] if earlier else None,
                                            "p": earlier[:-1], "x": truncated})
    with store.reading(gate) as uow:
        if query.summary == "count":
            total = s.count(uow, plan)
            auditing.disclosed(store, ctx, "search", resource_type=resource_type)
            return SearchPage([], total, None, self_token, issues, previous_token)
        page = s.find(uow, plan, keys, after, query.count)
        total = None
        if query.total == "accurate":
            total = s.count(uow, plan)
        elif after is None and not page.more and query.total != "none":
            total = len(page.ids)
        read = repository.read_many(uow, store.keys, [(resource_type, i) for i in page.ids])
        matches = [read[(resource_type, i)] for i in page.ids if (resource_type, i) in read]
        included = _includes(uow, store, ctx, resource_type, page.ids, query, issues) if query.includes and page.ids else []
        check_response_size(matches + included)
    entries = [(_shape(v, query), "match") for v in matches] + [(_shape(v, query), "include") for v in included]
    auditing.disclosed(store, ctx, "search", resource_type=resource_type, versions=matches + included)
    next_token = None
    if page.more:
        chain = [*earlier, after]
        dropped = len(chain) > _PREVIOUS_PAGES  # a token stays small: only the last pages can be walked back
        next_token = store.sign_cursor({"t": resource_type, "q": stored_params, "a": page.last_key,
                                        "p": chain[-_PREVIOUS_PAGES:], "x": truncated or dropped})
    return SearchPage(entries, total, next_token, self_token, issues, previous_token)


def too_large(limit: int) -> FhirError:
    return FhirError.one(400, "too-costly", f"the answer would exceed {limit} bytes: ask for fewer resources "
                         "(a smaller _count, fewer _include, fewer entries per batch) or page through them")


def check_response_size(versions: list[StoredVersion], already: int = 0) -> int:
    """Refuse (never truncate) an answer whose resources exceed the response bound; the bytes so far."""
    limit = costs.current().response_bytes
    size = already + sum(len(v.body or b"") for v in versions)
    if size > limit:
        raise too_large(limit)
    return size


def check(store: Store, ctx: AccessContext, resource_type: str, params: list[tuple[str, str]]) -> None:
    """Raise the 400 that `search` would raise for this query, without running it (a transaction
    checks its GET entries before it writes anything)."""
    check_type(resource_type)
    query = q.parse(params)
    _Resolver(store, False, [], policy.gate(ctx).restriction, ctx).plan(resource_type, query.clauses)
    _sort_keys(resource_type, query.sort)
    _validate_includes(resource_type, query)


def find_ids(uow: UnitOfWork, store: Store, resource_type: str, params: list[tuple[str, str]], limit: int) -> list[str]:
    """Ids matching a condition (conditional interactions): strict, no sorting, no paging."""
    query = q.parse(params)
    if query.includes or query.sort or query.summary or query.elements:
        raise bad_request("a condition takes search parameters only")
    if not query.clauses:
        raise bad_request("the condition is empty")
    plan = _Resolver(store, strict=True, issues=[], restriction=uow.access.restriction).plan(resource_type, query.clauses)
    return s.find(uow, plan, [], None, limit).ids


def parameter_error(exc: FhirError, where: str) -> FhirError:
    """Re-address a condition's 400 to the header it came from."""
    issues = [Issue(i.code, i.diagnostics, i.severity, (where,)) for i in exc.issues]
    return FhirError(exc.status, issues, exc.headers)
