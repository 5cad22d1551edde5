"""Unit of work: one database transaction and the data keys unwrapped for it."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from sqlalchemy.engine import Connection, Engine

from ehr.crypto.envelope import DataKey


class UnitOfWork:
    """A transaction; commits on success, rolls back on any exception.

    Unwrapped data keys are cached here and die with the unit of work: plaintext keys never
    outlive a request.
    """

    def __init__(self, engine: Engine, write: bool) -> None:
        self._engine = engine
        self.write = write
        self.conn: Connection
        self.keys_by_id: dict[str, DataKey] = {}
        self.keys_by_compartment: dict[str, DataKey] = {}
        self.after_commit: list[Any] = []

    def __enter__(self) -> UnitOfWork:
        self.conn = self._engine.connect()
        self.conn.info["ehr_write"] = self.write
        self.conn.begin()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            if exc_type is None:
                self.conn.commit()
            else:
                self.conn.rollback()
        finally:
            self.conn.info["ehr_write"] = False
            self.conn.close()
            self.keys_by_id.clear()
            self.keys_by_compartment.clear()
