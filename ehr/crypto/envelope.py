"""Envelope encryption of resource versions with AES-256-GCM.

Blob layout: format byte (0x01) | 12-byte random nonce | ciphertext+tag.
Associated data binds the blob to its row: resource type, logical id, version, data-key id and
format version. A ciphertext copied to another row, another version or another key fails to open.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT_V1 = 1
_HEADER = bytes([FORMAT_V1])
NONCE_BYTES = 12


class IntegrityFailure(Exception):
    """A stored ciphertext did not authenticate: tampering, a moved row, or a wrong key."""


def resource_aad(resource_type: str, logical_id: str, version: int, key_id: str) -> bytes:
    return f"ehr-res|{FORMAT_V1}|{resource_type}|{logical_id}|{version}|{key_id}".encode()


def data_key_aad(key_id: str, compartment: str) -> bytes:
    return f"ehr-dek|{FORMAT_V1}|{key_id}|{compartment}".encode()


def generate_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


class DataKey:
    """An unwrapped data key. Lives for one unit of work only; never cached across requests."""

    __slots__ = ("key_id", "_aead")

    def __init__(self, key_id: str, key: bytes) -> None:
        self.key_id = key_id
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return _HEADER + nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        if len(blob) < 1 + NONCE_BYTES + 16 or blob[0] != FORMAT_V1:
            raise IntegrityFailure("unknown ciphertext format")
        try:
            return self._aead.decrypt(blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :], aad)
        except InvalidTag:
            raise IntegrityFailure("ciphertext failed authentication") from None
