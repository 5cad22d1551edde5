"""Facility signing keys: one ES256 (P-256) key per facility, in files outside the database.

A key file is a private JWK (mode 0600) named `<organization id>.jwk` in the key directory
(`EHR_SIGNING_KEY_DIR`). The database never holds a private key, so a stolen database cannot
forge a signature. Retired public keys stay in `<organization id>.retired.jwks` so that old
signatures keep verifying after a rotation. Keys come from joserfc (no crypto is written here).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from joserfc.jwk import ECKey

_SAFE_ID = re.compile(r"^[A-Za-z0-9\-\.]{1,64}$")


class SigningKeyMissing(LookupError):
    """No key file for the facility (create one with `flask ehr signing create-key`)."""


@dataclass(frozen=True)
class FacilityKeys:
    directory: Path
    create_missing: bool = False  # development only: make a key on first use

    def _path(self, organization_id: str, suffix: str = ".jwk") -> Path:
        if not _SAFE_ID.match(organization_id):
            raise ValueError("not a FHIR id")
        return self.directory / f"{organization_id}{suffix}"

    def create(self, organization_id: str) -> ECKey:
        """A new key for the facility; the previous one's public part moves to the retired set."""
        path = self._path(organization_id)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if path.exists():
            old = ECKey.import_key(json.loads(path.read_text()))
            retired = self.retired(organization_id)
            retired.append(old.as_dict(private=False) | {"kid": old.thumbprint()})
            self._write(self._path(organization_id, ".retired.jwks"), json.dumps({"keys": retired}))
        key = ECKey.generate_key("P-256", private=True)
        self._write(path, json.dumps(key.as_dict(private=True)))
        return key

    @staticmethod
    def _write(path: Path, text: str) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, path)

    def private(self, organization_id: str) -> ECKey:
        path = self._path(organization_id)
        if not path.exists():
            if not self.create_missing:
                raise SigningKeyMissing(organization_id)
            return self.create(organization_id)
        return ECKey.import_key(json.loads(path.read_text()))

    def retired(self, organization_id: str) -> list[dict[str, str]]:
        path = self._path(organization_id, ".retired.jwks")
        return list(json.loads(path.read_text())["keys"]) if path.exists() else []

    def public(self, organization_id: str, kid: str) -> ECKey | None:
        """The facility's public key with this thumbprint, current or retired."""
        path = self._path(organization_id)
        if path.exists():
            current = ECKey.import_key(json.loads(path.read_text()))
            if current.thumbprint() == kid:
                return ECKey.import_key(current.as_dict(private=False))
        for jwk in self.retired(organization_id):
            if jwk.get("kid") == kid:
                return ECKey.import_key({k: v for k, v in jwk.items() if k != "kid"})
        return None
