"""What the sealed audit rows vouch for outside audit_log: the tables that tell a patient who did
what. `audit.verify` feeds these checks every sealed row, then the rows not sealed yet, in seq
order; each reports what its table lacks or holds beyond the rows:

- audit_subjects: exactly the patients each sealed row names (its compartment and `patients`,
  as `audit.insert_rows` derived them): a deleted index row hides the row from the patient's own
  access log, an added one shows it to someone else.
- break_glass: each sealed "break-glass" row has its grant (the same account, facility and
  patient, made moments before the row in the same transaction, lasting at most 240 minutes),
  and each grant has its row.
- care_relationships: each relationship was started, at its created_at, by a row of its facility
  for its patient (Patient registration by staff, care.check-in, care.record); a relationship a
  sealed row started is still there unless a later care.end row ended it.
- Consent history: version k of a Consent is the k-th write row of that Consent (create, update,
  patch or delete), of the same kind, patient and time; its current version is the newest.

The facility of a care row is its `organization` (staff acting for the facility), else the
Organization it names (resource_type "Organization"), else the "organization" of its encrypted
detail (a patient's care.end names it there; `audit.verify` opens it when given the data keys).
A care row that names no facility (an operator's care.record written before it named one) explains any relationship of
the patient started at its time, and a care.end that names none ends all of the patient's.

No lock is needed: verify reads the chain head, then these tables, then the rows. A sealed row
committed before the head was read, together with its table rows (same transaction), so they are
visible; a table row seen committed with its audit row, which the later reads see, sealed or
not. Only sealed rows oblige a table row to exist (a row not sealed yet may be newer than the
table read); any row may explain one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from sqlalchemy import and_, exists, select
from sqlalchemy.engine import Connection, Engine

from ehr.store.schema import break_glass, care_relationships, resource_versions, resources

Problem = Callable[[str], None]

# An audit row is made moments after the table rows of its transaction; a break-glass grant's time
# is taken before its transaction waits for SQLite's write lock (30 s at most). Generous on purpose.
WINDOW_US = 5 * 60 * 1_000_000
MAX_GRANT_US = 240 * 60 * 1_000_000  # ehr.services.care.MAX_BREAK_GLASS_MINUTES (a test checks they agree)

CARE_STARTS = frozenset({"care.check-in", "care.record"})  # and a Patient created by staff
CARE_ENDS = frozenset({"care.end"})
WRITES = {"create": ("POST", "PUT"), "update": ("PUT",), "patch": ("PATCH",), "delete": ("DELETE",)}
CARE_ACTIONS = CARE_STARTS | CARE_ENDS
WATCHED = frozenset({"break-glass", *CARE_ACTIONS, *WRITES})


@dataclass(frozen=True, slots=True)
class Event:
    """The columns of an audit row the cross-checks read."""

    seq: int
    recorded_at: int
    action: str
    outcome: str
    principal: str
    organization: str | None
    compartment: str | None
    resource_type: str | None
    logical_id: str | None
    sealed: bool
    named_facility: str | None = None  # the "organization" of its detail, when it had to be opened


def facility_of(event: Event) -> str | None:
    """The facility a care row is about (see the module doc), None when it names none."""
    if event.organization:
        return event.organization
    if event.resource_type == "Organization" and event.logical_id:
        return event.logical_id
    return event.named_facility


def _within(start: int, event: Event) -> bool:
    return start <= event.recorded_at <= start + WINDOW_US


# --- audit_subjects --------------------------------------------------------------------------------


class SubjectIndex:
    """audit_subjects beside the sealed rows, in seq order: one query, streamed (the table has no
    index by seq: one sort by the database beats one per page)."""

    def __init__(self, engine: Engine, top: int, problem: Problem, page: int = 20000) -> None:
        self.problem = problem
        self.rows = 0
        self._rows = self._read(engine, top, page)
        self._next: tuple[int, str] | None = next(self._rows, None)

    @staticmethod
    def _read(engine: Engine, top: int, page: int) -> Iterator[tuple[int, str]]:
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            postgres = engine.dialect.name == "postgresql"
            # PostgreSQL: a server-side cursor, so the rows are not all fetched at once.
            cursor = raw.cursor(name="ehr_audit_subjects") if postgres else raw.cursor()
            try:
                mark = "%s" if postgres else "?"
                cursor.execute(f"SELECT seq, patient_id FROM audit_subjects WHERE seq <= {mark} ORDER BY seq, patient_id", (top,))
                while rows := cursor.fetchmany(page):
                    yield from rows
            finally:
                cursor.close()

    def _advance(self) -> None:
        self.rows += 1
        self._next = next(self._rows, None)

    def _orphans_before(self, seq: int | None) -> None:
        while self._next is not None and (seq is None or self._next[0] < seq):
            orphan = self._next[0]
            self.problem(f"audit_subjects names row {orphan}, which is not a sealed row (inserted, or left by a deleted row?)")
            while self._next is not None and self._next[0] == orphan:
                self._advance()

    def check(self, seq: int, expected: set[str]) -> None:
        """The index rows of sealed row `seq` must be exactly `expected`."""
        self._orphans_before(seq)
        found = set()
        while self._next is not None and self._next[0] == seq:
            found.add(self._next[1])
            self._advance()
        if missing := len(expected - found):
            self.problem(f"row {seq}: audit_subjects lacks {missing} of the patients it names (deleted? their access log no longer shows the row)")
        if extra := len(found - expected):
            self.problem(f"row {seq}: audit_subjects adds {extra} patient(s) the row does not name (inserted?)")

    def finish(self) -> None:
        self._orphans_before(None)
        self.close()

    def close(self) -> None:
        self._rows.close()  # ends the query and gives its connection back


# --- break_glass -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Grant:
    grant_id: int
    created_at: int
    expires_at: int


class BreakGlassCheck:
    name = "break-glass grants"

    def __init__(self) -> None:
        self.grants: dict[tuple[Any, ...], list[_Grant]] = defaultdict(list)
        self.events: dict[tuple[Any, ...], list[Event]] = defaultdict(list)
        self.count = 0

    def load(self, conn: Connection) -> None:
        b = break_glass.c
        for row in conn.execute(select(b.id, b.account_id, b.organization_id, b.patient_id, b.created_at, b.expires_at)):
            self.grants[(f"staff:{row.account_id}", row.organization_id, row.patient_id)].append(_Grant(row.id, row.created_at, row.expires_at))
            self.count += 1

    def event(self, event: Event) -> None:
        if event.action == "break-glass" and event.outcome == "success":
            self.events[(event.principal, event.organization, event.compartment)].append(event)

    def finish(self, conn: Connection, problem: Problem) -> None:
        for key in sorted(set(self.grants) | set(self.events), key=repr):
            grants = sorted(self.grants.get(key, ()), key=lambda g: (g.created_at, g.grant_id))
            for grant in grants:
                if not 0 < grant.expires_at - grant.created_at <= MAX_GRANT_US:
                    problem(f"break_glass grant {grant.grant_id} does not last 1 to 240 minutes (altered?)")
            self._pair(grants, sorted(self.events.get(key, ()), key=lambda e: (e.recorded_at, e.seq)), problem)

    @staticmethod
    def _pair(grants: list[_Grant], events: list[Event], problem: Problem) -> None:
        """Each grant with the first row made within the window after it, both in time order."""
        i = j = 0
        while i < len(grants) or j < len(events):
            grant = grants[i] if i < len(grants) else None
            event = events[j] if j < len(events) else None
            if event is not None and (grant is None or grant.created_at > event.recorded_at):
                if event.sealed:
                    problem(f"row {event.seq}: the break-glass opening it records has no break_glass grant (deleted or altered? the patient no longer sees it)")
                j += 1
            elif grant is not None and (event is None or not _within(grant.created_at, event)):
                problem(f"break_glass grant {grant.grant_id} has no audit row (inserted or altered?)")
                i += 1
            else:
                i, j = i + 1, j + 1


# --- care_relationships ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Care:
    created_at: int | None = None  # the relationship's start; None when there is no row
    explained: bool = False  # an audit row started it at created_at (since the last sealed care.end)
    started: Event | None = None  # the sealed row that last started it by this facility, until a sealed care.end
    ended_later: bool = False  # a care.end not sealed yet: the row may be gone already


def _starts_care(event: Event) -> bool:
    if event.action in CARE_STARTS:
        return True
    # Staff registering a Patient put it in their facility's care (resources.write_prepared).
    return (event.action == "create" and event.resource_type == "Patient" and event.logical_id == event.compartment
            and event.principal.startswith("staff:"))


class CareCheck:
    name = "care relationships"

    def __init__(self) -> None:
        self.pairs: dict[tuple[str, str], _Care] = {}
        self.facilities: dict[str, set[str]] = defaultdict(set)  # patient -> facilities with a pair
        self.count = 0

    def _pair(self, facility: str, patient: str) -> _Care:
        pair = self.pairs.get((facility, patient))
        if pair is None:
            pair = self.pairs[(facility, patient)] = _Care()
            self.facilities[patient].add(facility)
        return pair

    def load(self, conn: Connection) -> None:
        c = care_relationships.c
        for row in conn.execute(select(c.organization_id, c.patient_id, c.created_at)):
            self._pair(row.organization_id, row.patient_id).created_at = row.created_at
            self.count += 1

    def event(self, event: Event) -> None:
        if event.outcome != "success" or not event.compartment:
            return
        starts, ends = _starts_care(event), event.action in CARE_ENDS
        if not (starts or ends):
            return
        facility = facility_of(event)
        for name in [facility] if facility else sorted(self.facilities.get(event.compartment, ())):
            pair = self._pair(name, event.compartment)
            if starts:
                pair.explained = pair.explained or (pair.created_at is not None and _within(pair.created_at, event))
                if facility and event.sealed:
                    pair.started = event
            elif event.sealed:
                pair.explained, pair.started = False, None
            else:
                pair.ended_later = True

    def finish(self, conn: Connection, problem: Problem) -> None:
        for (facility, patient), pair in sorted(self.pairs.items()):
            if pair.created_at is not None and not pair.explained:
                problem(f"care relationship of Organization/{facility} with Patient/{patient}: no audit row started it when it began (inserted or altered?)")
            elif pair.created_at is None and pair.started is not None and not pair.ended_later and self._made_a_row(conn, pair.started):
                problem(f"row {pair.started.seq} started a care relationship that is gone with no care.end row (deleted?)")

    @staticmethod
    def _made_a_row(conn: Connection, event: Event) -> bool:
        """A Patient create puts the patient in care only as its first version (a deleted Patient
        created again keeps its relationships as they were)."""
        if event.action != "create":
            return True
        v = resource_versions.c
        first = conn.execute(select(v.last_updated).where(v.resource_type == "Patient", v.logical_id == event.logical_id, v.version_id == 1)).scalar()
        return first is None or event.recorded_at - WINDOW_US <= first <= event.recorded_at


# --- Consent history -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Version:
    method: str
    last_updated: int
    compartment: str | None
    tombstone: bool


class ConsentCheck:
    name = "Consent versions"

    def __init__(self) -> None:
        self.versions: dict[str, dict[int, _Version]] = defaultdict(dict)
        self.pointers: dict[str, tuple[int, bool, str | None]] = {}
        self.bare: list[str] = []  # current pointers without any version
        self.events: dict[str, list[Event]] = defaultdict(list)
        self.count = 0

    def load(self, conn: Connection) -> None:
        v, r = resource_versions.c, resources.c
        joined = resource_versions.outerjoin(resources, and_(r.resource_type == v.resource_type, r.logical_id == v.logical_id))
        stmt = select(
            v.logical_id, v.version_id, v.method, v.last_updated, v.compartment, v.blob.is_(None).label("tombstone"),
            r.version_id.label("current"), r.deleted, r.compartment.label("current_compartment"),
        ).select_from(joined).where(v.resource_type == "Consent")
        for row in conn.execute(stmt):  # one statement: the pointers and versions of one moment
            self.versions[row.logical_id][row.version_id] = _Version(row.method, row.last_updated, row.compartment, bool(row.tombstone))
            if row.current is not None:
                self.pointers[row.logical_id] = (row.current, bool(row.deleted), row.current_compartment)
            self.count += 1
        # Versions are never removed by the application and commit with their pointer.
        has_versions = exists().where(v.resource_type == "Consent", v.logical_id == r.logical_id)
        self.bare = list(conn.execute(select(r.logical_id).where(r.resource_type == "Consent", ~has_versions)).scalars())

    def event(self, event: Event) -> None:
        if event.resource_type == "Consent" and event.action in WRITES and event.outcome == "success" and event.logical_id:
            self.events[event.logical_id].append(event)

    def finish(self, conn: Connection, problem: Problem) -> None:
        for consent in sorted(set(self.versions) | set(self.events)):
            versions, events = self.versions.get(consent, {}), self.events.get(consent, [])
            for number, event in enumerate(events, 1):  # seq order is write order: version k, k-th row
                version = versions.get(number)
                if version is None:
                    if event.sealed:
                        problem(f"row {event.seq} records the write of Consent/{consent} version {number}, which is gone (deleted?)")
                elif not self._matches(version, event):
                    problem(f"Consent/{consent} version {number} does not match row {event.seq}, the audit row of its write (altered?)")
            for number in sorted(versions):
                if not 1 <= number <= len(events):
                    problem(f"Consent/{consent} version {number} has no audit row of its write (inserted?)")
            if versions and not self._current(versions, self.pointers.get(consent)):
                problem(f"Consent/{consent}: its current version is not the newest of its history (altered?)")
        for consent in self.bare:
            problem(f"Consent/{consent} has no history (its versions were deleted?)")

    @staticmethod
    def _matches(version: _Version, event: Event) -> bool:
        return (version.method in WRITES[event.action] and version.tombstone == (version.method == "DELETE")
                and version.compartment == event.compartment and _within(version.last_updated, event))

    @staticmethod
    def _current(versions: dict[int, _Version], pointer: tuple[int, bool, str | None] | None) -> bool:
        newest = max(versions)
        return pointer == (newest, versions[newest].tombstone, versions[newest].compartment)


# --- all of them -----------------------------------------------------------------------------------


class Coverage:
    """The table checks together: `load` after reading the chain head, `event` for each row in seq
    order (sealed first), `finish` at the end."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.checks = (BreakGlassCheck(), CareCheck(), ConsentCheck())

    def load(self, engine: Engine) -> None:
        with engine.connect() as conn:
            for check in self.checks:
                check.load(conn)

    def event(self, event: Event) -> None:
        for check in self.checks:
            check.event(event)

    def finish(self, engine: Engine) -> None:
        with engine.connect() as conn:
            for check in self.checks:
                check.finish(conn, self.problem)

    def counts(self) -> dict[str, int]:
        return {check.name: check.count for check in self.checks}
