"""Who is asking, on whose behalf, with which scopes: passed to every service call."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

PrincipalKind = Literal["anonymous", "system", "staff", "patient", "operator", "server"]
STAFF_ROLES = ("doctor", "nurse", "receptionist", "admin")


@dataclass(frozen=True)
class AccessContext:
    principal: str  # "system:<client>", "staff:<account>", "patient:<account>", "operator:<name>", ...
    kind: PrincipalKind
    organization: str | None = None  # the Organization id the staff member or client acts for
    on_behalf_of: str | None = None  # a patient session: the patient's own id
    scopes: frozenset[str] = field(default_factory=frozenset)
    request_id: str | None = None
    purpose: str = "TREAT"  # purpose of use (v3 ActReason), matched against Consent.provision.purpose
    role: str | None = None  # staff role, or "patient"
    account_id: str | None = None
    dependants: frozenset[str] = field(default_factory=frozenset)  # patients a patient represents
    source_hash: bytes | None = None  # keyed hash of the client address (for the audit trail)

    def to_json(self) -> str:
        """What a deferred job needs to act with the same rights later (no request details)."""
        return json.dumps({
            "principal": self.principal, "kind": self.kind, "organization": self.organization, "on_behalf_of": self.on_behalf_of,
            "scopes": sorted(self.scopes), "purpose": self.purpose, "role": self.role, "account_id": self.account_id,
        })

    @classmethod
    def from_json(cls, text: str) -> AccessContext:
        data = json.loads(text)
        return cls(
            principal=data["principal"], kind=data["kind"], organization=data.get("organization"), on_behalf_of=data.get("on_behalf_of"),
            scopes=frozenset(data.get("scopes") or ()), purpose=data.get("purpose") or "TREAT", role=data.get("role"),
            account_id=data.get("account_id"),
        )

    @property
    def unrestricted(self) -> bool:
        """Operators, the server itself, and the open API of development and tests."""
        return self.kind in ("operator", "server", "anonymous")

    @classmethod
    def operator(cls, name: str = "cli") -> AccessContext:
        return cls(principal=f"operator:{name}", kind="operator", scopes=frozenset({"system/*.cruds"}))

    @classmethod
    def server(cls) -> AccessContext:
        """The server itself (audit writers, internal jobs)."""
        return cls(principal="server", kind="server", scopes=frozenset({"system/*.cruds"}))

    @classmethod
    def open_api(cls, request_id: str | None = None) -> AccessContext:
        """EHR_API_AUTH=open (development and tests only; production refuses it)."""
        return cls(principal="anonymous", kind="anonymous", scopes=frozenset({"system/*.cruds"}), request_id=request_id)
