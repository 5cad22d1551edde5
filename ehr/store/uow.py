"""Unit of work: one database transaction, the data keys unwrapped for it, and its queued inserts.

Inserts of new rows (versions, current pointers, index rows) are queued and sent as one
multi-row statement per table, so a 36-resource transaction bundle costs a handful of round trips
instead of a few hundred. Every statement run through `execute` flushes the queue first, so reads
and updates always see the writes made before them in the same unit of work.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Callable

from sqlalchemy import Table, insert
from sqlalchemy.engine import Connection, CursorResult, Engine
from sqlalchemy.exc import IntegrityError

from ehr.crypto.envelope import DataKey
from ehr.store import engine as engine_setup


class WriteConflict(Exception):
    """A queued insert hit a uniqueness rule: another writer created the same row first."""


class UnitOfWork:
    """A transaction; commits on success, rolls back on any exception.

    Unwrapped data keys are cached here and die with the unit of work: plaintext keys never
    outlive a request.
    """

    def __init__(self, engine: Engine, write: bool, access: Any = None) -> None:
        self._engine = engine
        self.write = write
        # The access gate (ehr.store.access.Gate) of the principal this transaction serves.
        self.access = access
        self.conn: Connection
        self.keys_by_id: dict[str, DataKey] = {}
        self.keys_by_compartment: dict[str, DataKey] = {}
        self._queued: dict[Table, list[dict[str, Any]]] = {}
        self._before_commit: list[Callable[[UnitOfWork], None]] = []
        self.notes: dict[str, Any] = {}  # per-transaction state of hooks (e.g. pending audit rows)

    def __enter__(self) -> UnitOfWork:
        self.conn = self._engine.connect()
        self.conn.info["ehr_write"] = self.write
        self.conn.begin()
        try:
            engine_setup.apply_statement_timeout(self.conn)
        except BaseException:
            self.conn.rollback()
            self.conn.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            if exc_type is None:
                for hook in self._before_commit:
                    hook(self)
                self.flush()
                self.conn.commit()
            else:
                self.conn.rollback()
        except BaseException:
            self.conn.rollback()
            raise
        finally:
            self.conn.info["ehr_write"] = False
            self.conn.close()
            self.keys_by_id.clear()
            self.keys_by_compartment.clear()
            self._queued.clear()
            self._before_commit.clear()
            self.notes.clear()

    def before_commit(self, hook: Callable[[UnitOfWork], None]) -> None:
        """Run `hook` once, inside the transaction, just before it commits."""
        if hook not in self._before_commit:
            self._before_commit.append(hook)

    def queue(self, table: Table, row: dict[str, Any]) -> None:
        self._queued.setdefault(table, []).append(row)

    def queue_many(self, table: Table, rows: list[dict[str, Any]]) -> None:
        if rows:
            self._queued.setdefault(table, []).extend(rows)

    def flush(self) -> None:
        """Send queued inserts, table by table in the order they were first queued."""
        if not self._queued:
            return
        queued, self._queued = self._queued, {}
        try:
            for table, rows in queued.items():
                self.conn.execute(insert(table), rows)
        except IntegrityError:
            raise WriteConflict("a row written by this unit of work already exists") from None

    def execute(self, statement: Any, parameters: Any = None) -> CursorResult[Any]:
        self.flush()
        if parameters is None:
            return self.conn.execute(statement)
        return self.conn.execute(statement, parameters)
