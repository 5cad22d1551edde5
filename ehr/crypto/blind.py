"""Keyed blind indexes: HMAC-SHA256 of normalised values, one derived key per purpose.

A plain hash of a 12-digit national ID is brute-forced in minutes; an HMAC under a key kept outside
the database is not. Deriving a sub-key per purpose (identifier, name, phone...) stops equal values
of different fields from being linked across index tables.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata

TOKEN_BYTES = 16  # 128 bits: collision-free at any realistic size, half the index of a full digest

_VI_SPECIAL = str.maketrans({"đ": "d", "Đ": "d", "ð": "d"})


def fold_text(value: str) -> str:
    """Case- and accent-insensitive form of free text: 'Nguyễn  Thị Ánh' -> 'nguyen thi anh'.

    Vietnamese letters are decomposed (NFKD) and their combining marks dropped; đ has no
    decomposition, so it is mapped explicitly.
    """
    decomposed = unicodedata.normalize("NFKD", value.casefold().translate(_VI_SPECIAL))
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(unicodedata.normalize("NFKC", stripped).casefold().translate(_VI_SPECIAL).split())


def normalize_identifier(value: str) -> str:
    """Identifier values compare without spaces and case: ' dn40 1012345 ' == 'DN401012345'."""
    return "".join(unicodedata.normalize("NFKC", value).split()).upper()


class BlindIndex:
    """Computes blind-index tokens. Holds only derived keys; the root key is not kept."""

    def __init__(self, root_key: bytes) -> None:
        if len(root_key) < 32:
            raise ValueError("blind-index key must be at least 32 bytes")
        self._root_fingerprint = hashlib.sha256(b"ehr-blind-fp|" + root_key).digest()
        self._root = root_key
        self._subkeys: dict[str, bytes] = {}

    def _subkey(self, purpose: str) -> bytes:
        key = self._subkeys.get(purpose)
        if key is None:
            key = hmac.new(self._root, b"ehr-blind|v1|" + purpose.encode(), hashlib.sha256).digest()
            self._subkeys[purpose] = key
        return key

    def token(self, purpose: str, normalized: str) -> bytes:
        """Token of an already-normalised value for `purpose` (e.g. 'Patient.identifier')."""
        return hmac.digest(self._subkey(purpose), normalized.encode("utf-8"), "sha256")[:TOKEN_BYTES]

    def lock_key(self, *parts: str) -> bytes:
        """A key for serialising writes on a condition, e.g. ('Patient', 'identifier', value)."""
        return self.token("lock", "\x1f".join(parts))
