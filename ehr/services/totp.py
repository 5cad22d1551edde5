"""TOTP second factor (RFC 6238: SHA-1, 6 digits, 30-second steps, one step of clock drift).

Pure functions over the shared secret; the account keeps the secret encrypted (`accounts.seal`)
and the last step it accepted, so a code is accepted once: only later steps pass.
"""

from __future__ import annotations

import hmac

import pyotp

STEP_SECONDS = 30
VALID_WINDOW = 1  # codes of the previous and the next step are accepted too (clock drift)
DIGITS = 6


def new_secret() -> str:
    """160 random bits, base32 (what authenticator apps expect)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, label: str, issuer: str) -> str:
    return pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(name=label, issuer_name=issuer)


def matching_step(secret: str, code: str, now_us: int, after_step: int | None) -> int | None:
    """The newest step within the window whose code equals `code` and that is later than
    `after_step` (the last accepted one); None when there is none."""
    code = "".join(code.split())
    if len(code) != DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    current = now_us // 1_000_000 // STEP_SECONDS
    found = None
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        # compare every candidate (no early exit): the time taken says nothing about which matched
        if hmac.compare_digest(totp.generate_otp(step), code) and (after_step is None or step > after_step):
            found = step
    return found


def code_at(secret: str, now_us: int) -> str:
    """The code an authenticator shows at `now_us` (tests and the operator's checks)."""
    return pyotp.TOTP(secret, interval=STEP_SECONDS).generate_otp(now_us // 1_000_000 // STEP_SECONDS)
