"""Password hashing (Argon2id) and the rules a new password must meet.

argon2-cffi's `PasswordHasher()` defaults are RFC 9106's second recommended profile (Argon2id,
t=3, m=64 MiB, p=4), above OWASP's floor (m >= 19 MiB, t >= 2). A stored hash made with other
parameters still verifies and is replaced at the next successful login (`needs_rehash`).
"""

from __future__ import annotations

import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 10
MAX_LENGTH = 128  # far above any passphrase; bounds the work a request can ask for

_HASHER = PasswordHasher()

# Verified when the login name is unknown (or has no password yet), so that such an attempt costs
# the same Argon2 work as a real one: response time says nothing about which accounts exist.
_DUMMY_HASH = _HASHER.hash("ehr dummy password for timing parity")

# Frequent choices of 10+ characters (breach corpora, Vietnamese favourites); the length rule
# already removes the shorter ones. Compared after lower-casing.
_COMMON = frozenset({
    "1234567890", "0123456789", "0987654321", "9876543210", "1111111111", "0000000000", "12345678910",
    "123456789a", "a123456789", "1234567890a", "123456789abc", "1q2w3e4r5t", "1qaz2wsx3edc", "qwertyuiop",
    "qwerty1234", "qwerty12345", "asdfghjkl1", "zxcvbnm123", "password12", "password123", "password1234",
    "passw0rd123", "iloveyou12", "iloveyou123", "abc1234567", "abcd123456", "abcdef1234", "princess12",
    "football12", "baseball12", "sunshine12", "welcome123", "admin12345", "administrator", "letmein123",
    "matkhau123", "matkhau1234", "matkhaucuatoi", "anhyeuem123", "emyeuanh123", "123456789vn", "vietnam123",
    "vietnam1234", "hanoi12345", "saigon1234", "benhvien123", "bacsi12345", "ehrvn12345", "changeme123",
})


class PasswordRejected(ValueError):
    """A new password does not meet the rules: `code` says which (short, long, common,
    login-name) for the pages to translate; the message is the operator's English. Never the
    password itself."""

    _TEXT = {
        "short": f"at least {MIN_LENGTH} characters",
        "long": f"at most {MAX_LENGTH} characters",
        "common": "too common: choose another",
        "login-name": "must not contain the login name",
    }

    def __init__(self, code: str) -> None:
        super().__init__(self._TEXT.get(code, code))
        self.code = code


def normalize(password: str) -> str:
    """NFC, so the same Vietnamese password typed on different keyboards hashes the same."""
    return unicodedata.normalize("NFC", password)


def check_new(password: str, *, login_name: str | None = None) -> str:
    """The normalised password, or PasswordRejected (length, common, equal to the login name)."""
    value = normalize(password)
    if len(value) < MIN_LENGTH:
        raise PasswordRejected("short")
    if len(value) > MAX_LENGTH:
        raise PasswordRejected("long")
    folded = value.casefold()
    if folded in _COMMON or len(set(folded)) < 3:
        raise PasswordRejected("common")
    if login_name and login_name.casefold() in folded:
        raise PasswordRejected("login-name")
    return value


def hash_password(password: str) -> str:
    return _HASHER.hash(normalize(password))


def verify(stored: str | None, password: str) -> bool:
    """Constant work whether or not there is a stored hash (a dummy one stands in)."""
    candidate = normalize(password)[: MAX_LENGTH * 4]
    try:
        return bool(_HASHER.verify(stored or _DUMMY_HASH, candidate)) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)
