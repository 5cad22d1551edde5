"""Identifier system URIs. No official Vietnamese URIs exist yet (the community VN Core IG and the
Ministry's draft use different bases), so every URI derives from one configurable base."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_BASE = "https://fhir.ehr-vn.org/sid"


@dataclass(frozen=True)
class IdentifierSystems:
    base: str = DEFAULT_BASE

    def _uri(self, name: str) -> str:
        return f"{self.base.rstrip('/')}/{name}"

    @property
    def cccd(self) -> str:
        """Personal ID number / căn cước (số định danh cá nhân), 12 digits."""
        return self._uri("cccd")

    @property
    def cmnd(self) -> str:
        """Old identity card number (chứng minh nhân dân), 9 or 12 digits."""
        return self._uri("cmnd")

    @property
    def bhyt(self) -> str:
        """Health-insurance card code (mã thẻ BHYT)."""
        return self._uri("bhyt")

    @property
    def bhxh(self) -> str:
        """Social-insurance number (mã số BHXH), 10 digits."""
        return self._uri("bhxh")

    @property
    def facility(self) -> str:
        """Facility code (mã cơ sở khám chữa bệnh), 5 digits."""
        return self._uri("facility")

    @property
    def practitioner_licence(self) -> str:
        """Practising licence number (chứng chỉ hành nghề)."""
        return self._uri("practising-licence")

    @property
    def temporary(self) -> str:
        """Temporary ids for newborns and unidentified patients."""
        return self._uri("temporary")

    def mrn(self, facility_code: str) -> str:
        """A facility's own medical record numbers."""
        return self._uri(f"mrn/{facility_code}")
