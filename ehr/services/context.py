"""Who is asking, on whose behalf, with which scopes: passed to every service call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

PrincipalKind = Literal["anonymous", "system", "staff", "patient", "operator", "server"]


@dataclass(frozen=True)
class AccessContext:
    principal: str
    kind: PrincipalKind
    organization: str | None = None
    on_behalf_of: str | None = None  # the patient a session acts for, or a delegating user
    scopes: frozenset[str] = field(default_factory=frozenset)
    request_id: str | None = None
    purpose: str | None = None

    @classmethod
    def operator(cls, name: str = "cli") -> AccessContext:
        return cls(principal=f"operator:{name}", kind="operator", scopes=frozenset({"system/*.cruds"}))

    @classmethod
    def server(cls) -> AccessContext:
        """The server itself (audit writers, internal jobs)."""
        return cls(principal="server", kind="server", scopes=frozenset({"system/*.cruds"}))

    @classmethod
    def open_api(cls, request_id: str | None = None) -> AccessContext:
        """The FHIR API caller until authentication is configured (see README, Security status)."""
        return cls(principal="anonymous", kind="anonymous", scopes=frozenset({"system/*.cruds"}), request_id=request_id)
