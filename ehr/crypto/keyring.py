"""Master keys: the key-encryption keys that wrap every data key.

A master key never enters the database. It comes from the environment (`EHR_MASTER_KEY`, base64 of
32 bytes, plus `EHR_MASTER_KEY_PREVIOUS` during a rotation) or from a key file
(`EHR_MASTER_KEY_FILE`, JSON, mode 0600). `MasterKeyProvider` is the interface a KMS or Vault
client implements to replace the local provider.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import stat
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
KEYFILE_FORMAT = "ehr-master-keyring/1"
_WRAP_VERSION = b"\x01"


class KeyError_(Exception):
    """Base class for key problems; messages never contain key material."""


class KeyConfigError(KeyError_):
    """A key is missing, malformed or not acceptable in this environment."""


class UnknownMasterKey(KeyError_):
    """A wrapped key names a master key this process does not hold."""


class UnwrapError(KeyError_):
    """A wrapped key failed authentication: tampered, moved, or wrong master key."""


def decode_key(text: str, what: str) -> bytes:
    """Decode a base64 key of exactly 32 bytes, naming only `what` on failure."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyConfigError(f"{what} is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise KeyConfigError(f"{what} must be base64 of {KEY_BYTES} bytes, got {len(raw)}")
    return raw


def key_id_of(key: bytes) -> str:
    """A short public identifier for a master key (an HMAC of a constant; reveals nothing)."""
    return "mk-" + hmac.new(key, b"ehr master key id", hashlib.sha256).hexdigest()[:16]


def generate_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


class MasterKeyProvider(Protocol):
    """What the store needs from a key-encryption-key service (local file, KMS, Vault transit)."""

    def primary_id(self) -> str: ...

    def wrap(self, plaintext: bytes, aad: bytes) -> tuple[str, bytes]:
        """Encrypt a data key under the primary master key; return (master key id, wrapped)."""

    def unwrap(self, master_key_id: str, wrapped: bytes, aad: bytes) -> bytes:
        """Decrypt a data key wrapped under `master_key_id`."""

    def known_ids(self) -> list[str]: ...


@dataclass(frozen=True)
class Keyring:
    primary: str
    keys: dict[str, bytes]
    development: bool


def _wrap(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(12)
    return _WRAP_VERSION + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _unwrap(key: bytes, wrapped: bytes, aad: bytes) -> bytes:
    if len(wrapped) < 1 + 12 + 16 or wrapped[:1] != _WRAP_VERSION:
        raise UnwrapError("wrapped key has an unknown format")
    try:
        return AESGCM(key).decrypt(wrapped[1:13], wrapped[13:], aad)
    except InvalidTag:
        raise UnwrapError("wrapped key failed authentication") from None


def read_keyfile(path: Path) -> Keyring:
    """Load a key file written by `write_keyfile`; refuse files other users can read."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyConfigError(f"master key file {path} does not exist") from None
    if os.name == "posix" and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyConfigError(f"master key file {path} must not be readable by group or others (chmod 600)")
    try:
        doc = json.loads(path.read_text("utf-8"))
        if doc.get("format") != KEYFILE_FORMAT:
            raise KeyConfigError(f"master key file {path} has an unknown format")
        keys = {kid: decode_key(text, f"key {kid} in {path}") for kid, text in doc["keys"].items()}
        primary = doc["primary"]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise KeyConfigError(f"master key file {path} is not a valid key file") from None
    for kid, key in keys.items():
        if key_id_of(key) != kid:
            raise KeyConfigError(f"master key file {path}: key id {kid} does not match its key")
    if primary not in keys:
        raise KeyConfigError(f"master key file {path}: primary key {primary} is missing")
    return Keyring(primary=primary, keys=keys, development=bool(doc.get("development")))


def write_keyfile(path: Path, ring: Keyring) -> None:
    """Write a key file atomically with mode 0600 (never a moment where it is world-readable)."""
    doc = {
        "format": KEYFILE_FORMAT,
        "development": ring.development,
        "warning": (
            "DEVELOPMENT KEY - NOT FOR PRODUCTION. Anyone holding this file can decrypt the database."
            if ring.development
            else "Master key file. Keep it outside the database host's backups; losing it loses all data."
        ),
        "primary": ring.primary,
        "keys": {kid: base64.b64encode(k).decode() for kid, k in ring.keys.items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".keyfile-", dir=str(path.parent))
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def new_keyring(development: bool) -> Keyring:
    key = generate_key()
    kid = key_id_of(key)
    return Keyring(primary=kid, keys={kid: key}, development=development)


def add_primary(ring: Keyring) -> Keyring:
    """Return a keyring with a fresh primary key; the old keys stay for unwrapping."""
    key = generate_key()
    kid = key_id_of(key)
    return Keyring(primary=kid, keys={**ring.keys, kid: key}, development=ring.development)


class LocalMasterKeyProvider:
    """Master keys held in this process, from the environment or a key file.

    With a key file, a key id this process does not know triggers a re-read of the file (at most
    once a second), so `flask ehr keys rotate --new-master` in another process takes effect in
    running servers without a restart.
    """

    def __init__(self, ring: Keyring, path: Path | None = None) -> None:
        self._ring = ring
        self._path = path
        self._lock = threading.Lock()
        self._checked_at = 0.0
        self._mtime = path.stat().st_mtime_ns if path else 0

    @classmethod
    def from_env_values(cls, current: str, previous: str = "") -> LocalMasterKeyProvider:
        key = decode_key(current, "EHR_MASTER_KEY")
        keys = {key_id_of(key): key}
        for i, text in enumerate(p for p in previous.split(",") if p.strip()):
            old = decode_key(text, f"EHR_MASTER_KEY_PREVIOUS[{i}]")
            keys.setdefault(key_id_of(old), old)
        return cls(Keyring(primary=key_id_of(key), keys=keys, development=False))

    @classmethod
    def from_file(cls, path: Path) -> LocalMasterKeyProvider:
        return cls(read_keyfile(path), path)

    @property
    def development(self) -> bool:
        return self._ring.development

    @property
    def path(self) -> Path | None:
        return self._path

    def primary_id(self) -> str:
        self._maybe_reload()
        return self._ring.primary

    def known_ids(self) -> list[str]:
        return list(self._ring.keys)

    def key_bytes(self) -> list[bytes]:
        """Raw master keys, for start-up checks (distinct from other secrets) and leak scans."""
        return list(self._ring.keys.values())

    def wrap(self, plaintext: bytes, aad: bytes) -> tuple[str, bytes]:
        self._maybe_reload()
        ring = self._ring
        return ring.primary, _wrap(ring.keys[ring.primary], plaintext, aad)

    def unwrap(self, master_key_id: str, wrapped: bytes, aad: bytes) -> bytes:
        key = self._ring.keys.get(master_key_id)
        if key is None:
            self._maybe_reload(force=True)
            key = self._ring.keys.get(master_key_id)
            if key is None:
                raise UnknownMasterKey(f"master key {master_key_id} is not available to this process")
        return _unwrap(key, wrapped, aad)

    def reload(self) -> None:
        """Re-read the key file now (a rotation must not run under a primary cached a moment ago)."""
        self._maybe_reload(force=True)

    def _maybe_reload(self, force: bool = False) -> None:
        if self._path is None:
            return
        now = time.monotonic()
        if not force and now - self._checked_at < 1.0:
            return
        with self._lock:
            self._checked_at = now
            try:
                mtime = self._path.stat().st_mtime_ns
            except FileNotFoundError:
                return
            if mtime != self._mtime:
                self._ring = read_keyfile(self._path)
                self._mtime = mtime
