"""Data keys: one per patient compartment, wrapped by the master key, stored in `data_keys`."""

from __future__ import annotations

import secrets
import time

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from ehr.crypto.envelope import DataKey, data_key_aad, generate_data_key
from ehr.crypto.keyring import MasterKeyProvider, UnwrapError
from ehr.store.schema import data_keys
from ehr.store.uow import UnitOfWork


class CompartmentErased(Exception):
    """The compartment's data key was destroyed (crypto-shredding): its data is gone for good."""


class KeyIntegrityError(Exception):
    """A wrapped data key failed authentication (tampered or moved between compartments)."""


def now_us() -> int:
    return time.time_ns() // 1000


class DataKeyStore:
    def __init__(self, master: MasterKeyProvider) -> None:
        self.master = master

    def _open(self, key_id: str, compartment: str, master_key_id: str | None, wrapped: bytes | None) -> DataKey:
        if wrapped is None or master_key_id is None:
            raise CompartmentErased(compartment)
        try:
            raw = self.master.unwrap(master_key_id, wrapped, data_key_aad(key_id, compartment))
        except UnwrapError:
            raise KeyIntegrityError(key_id) from None
        return DataKey(key_id, raw)

    def for_read(
        self, uow: UnitOfWork, key_id: str, compartment: str, master_key_id: str | None, wrapped: bytes | None
    ) -> DataKey:
        key = uow.keys_by_id.get(key_id)
        if key is None:
            key = self._open(key_id, compartment, master_key_id, wrapped)
            uow.keys_by_id[key_id] = key
        return key

    def for_write(self, uow: UnitOfWork, compartment: str) -> DataKey:
        """The compartment's data key, created on first use (race-free across processes)."""
        key = uow.keys_by_compartment.get(compartment)
        if key is not None:
            return key
        row = self._select(uow, compartment)
        if row is None:
            self._insert(uow, compartment)
            row = self._select(uow, compartment)
            assert row is not None
        key = self._open(row.key_id, compartment, row.master_key_id, row.wrapped)
        uow.keys_by_compartment[compartment] = key
        uow.keys_by_id[key.key_id] = key
        return key

    def by_id(self, uow: UnitOfWork, key_id: str) -> DataKey:
        """A data key by its id (for records that name the key they were sealed with)."""
        key = uow.keys_by_id.get(key_id)
        if key is not None:
            return key
        stmt = select(data_keys.c.compartment, data_keys.c.master_key_id, data_keys.c.wrapped).where(data_keys.c.key_id == key_id)
        row = uow.execute(stmt).first()
        if row is None:
            raise CompartmentErased(key_id)
        return self.for_read(uow, key_id, row.compartment, row.master_key_id, row.wrapped)

    def _select(self, uow: UnitOfWork, compartment: str):  # type: ignore[no-untyped-def]
        stmt = select(data_keys.c.key_id, data_keys.c.master_key_id, data_keys.c.wrapped).where(
            data_keys.c.compartment == compartment
        )
        return uow.execute(stmt).first()

    def _insert(self, uow: UnitOfWork, compartment: str) -> None:
        key_id = secrets.token_hex(16)
        master_id, wrapped = self.master.wrap(generate_data_key(), data_key_aad(key_id, compartment))
        values = dict(key_id=key_id, compartment=compartment, master_key_id=master_id, wrapped=wrapped, created_at=now_us())
        dialect = postgresql if uow.conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(data_keys).values(**values).on_conflict_do_nothing(index_elements=["compartment"])
        uow.execute(stmt)

    # --- operator actions -------------------------------------------------------------------

    def rewrap_batch(self, uow: UnitOfWork, limit: int, after_key_id: str = "") -> tuple[int, int, str | None]:
        """Re-wrap up to `limit` live data keys (key id > `after_key_id`) not under the primary.

        Returns (re-wrapped, failed, last key id seen or None when there are no more). A key that
        does not authenticate is counted and skipped, never fatal: rotation must finish for every
        healthy key, and the report names the failures by count.
        """
        primary = self.master.primary_id()
        rows = uow.execute(
            select(data_keys.c.key_id, data_keys.c.compartment, data_keys.c.master_key_id, data_keys.c.wrapped)
            .where(data_keys.c.wrapped.is_not(None), data_keys.c.master_key_id != primary, data_keys.c.key_id > after_key_id)
            .order_by(data_keys.c.key_id)
            .limit(limit)
        ).all()
        done = failed = 0
        for row in rows:
            aad = data_key_aad(row.key_id, row.compartment)
            try:
                raw = self.master.unwrap(row.master_key_id, row.wrapped, aad)
            except Exception:  # noqa: BLE001 - counted and reported by key id only
                failed += 1
                continue
            master_id, wrapped = self.master.wrap(raw, aad)
            uow.execute(
                update(data_keys)
                .where(data_keys.c.key_id == row.key_id, data_keys.c.master_key_id == row.master_key_id)
                .values(master_key_id=master_id, wrapped=wrapped)
            )
            done += 1
        return done, failed, (str(rows[-1].key_id) if rows else None)

    def destroy(self, uow: UnitOfWork, compartment: str) -> str | None:
        """Crypto-shred: forget the wrapped key. Returns the key id, or None if there was none."""
        row = self._select(uow, compartment)
        if row is None:
            return None
        uow.execute(
            update(data_keys)
            .where(data_keys.c.key_id == row.key_id)
            .values(wrapped=None, master_key_id=None, destroyed_at=now_us())
        )
        return str(row.key_id)
