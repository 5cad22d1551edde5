"""The store's runtime: engine, data keys, blind index and settings, created once per process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import base64
import json

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.engine import Engine

from ehr.crypto.blind import BlindIndex
from ehr.crypto.keyring import MasterKeyProvider
from ehr.identity.systems import IdentifierSystems
from ehr.store.access import Gate
from ehr.store.audit import GroupCommitter
from ehr.store.audit_relay import RelayedAudit
from ehr.store.keys import DataKeyStore
from ehr.store.uow import UnitOfWork


class CursorError(ValueError):
    """A paging token was altered, expired or made for another query."""


@dataclass
class Store:
    engine: Engine
    master: MasterKeyProvider
    blind: BlindIndex
    cursor_secret: bytes
    referential_integrity: bool = True
    retention_years: int = 10
    care_days: int = 90  # a care relationship ends this long after the facility's latest check-in or encounter
    base_urls: tuple[str, ...] = ()
    systems: IdentifierSystems = field(default_factory=IdentifierSystems)
    audit_key: bytes = b""  # HMAC key of the audit chain (kept outside the database)
    audit_timeout: float = 5.0
    audit_relay: Path | None = None  # the job runner's audit relay socket (None: commit in-process)
    keys: DataKeyStore = field(init=False)
    audit: GroupCommitter | RelayedAudit = field(init=False)

    def __post_init__(self) -> None:
        self.keys = DataKeyStore(self.master)
        local = GroupCommitter(self.engine, self.audit_timeout)
        self.audit = RelayedAudit(self.audit_relay, local, self.audit_timeout) if self.audit_relay else local
        # Paging tokens are encrypted, not just signed: a search's next link must not carry the
        # national ID or name it searched for.
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"ehr page cursor v1").derive(self.cursor_secret)
        self._cursors = Fernet(base64.urlsafe_b64encode(key))

    def care_expiry(self, now_us: int) -> int:
        """When a care relationship started or renewed at `now_us` ends (µs since the epoch)."""
        return now_us + self.care_days * 86_400_000_000

    def reading(self, access: Gate) -> UnitOfWork:
        """A read transaction for a principal: its gate filters what every query returns."""
        return UnitOfWork(self.engine, write=False, access=access)

    def writing(self, access: Gate) -> UnitOfWork:
        return UnitOfWork(self.engine, write=True, access=access)

    def sign_cursor(self, payload: dict[str, object]) -> str:
        return self._cursors.encrypt(json.dumps(payload, separators=(",", ":")).encode()).decode()

    def open_cursor(self, token: str, ttl_seconds: int = 6 * 3600) -> dict[str, object]:
        try:
            payload = json.loads(self._cursors.decrypt(token.encode(), ttl=ttl_seconds))
        except (InvalidToken, ValueError):
            raise CursorError("paging token is not valid") from None
        if not isinstance(payload, dict):
            raise CursorError("paging token is not valid")
        return payload
