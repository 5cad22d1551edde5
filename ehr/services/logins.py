"""Logging in: password step, TOTP step, account activation, and the throttle in front of them.

The throttle counts failed guesses per login name (a keyed hash of what was typed, whether or
not an account has that name) in the database, so every gunicorn worker sees the same count
whatever the source address:

- at most `max_failures` (20) failures per rolling `window` (1 hour) are evaluated; once there,
  further attempts are refused (429) without looking at the password, even a correct one;
- after `backoff_after` (5) failures, an attempt is refused until 2^(n-5) seconds passed since
  the latest failure (n failures in the window): 1 s, 2 s, 4 s ... .

The decision and the counting happen in one short transaction under a per-name lock (PostgreSQL
advisory lock; SQLite's single writer): the attempt is counted *before* the slow Argon2 check and
forgotten if it succeeds, so concurrent attempts can never slip past the limit. A wrong TOTP code
counts against the same name and against its challenge (at most 5 codes per challenge).

Successes do not reset the count: the limit is on guesses per hour, whoever logs in between.
"""

from __future__ import annotations

import dataclasses
import hmac
import math
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal

from ehr.services import accounts, auditing, passwords, totp
from ehr.services.accounts import Account
from ehr.services.context import AccessContext
from ehr.store import access
from ehr.store.access import INTERNAL
from ehr.store.runtime import Store
from ehr.store.uow import UnitOfWork

MAX_TOTP_ATTEMPTS = 5
CHALLENGE_SECONDS = 600  # a password step's TOTP challenge lives ten minutes


@dataclass(frozen=True)
class Limits:
    max_failures: int = 20
    window_seconds: int = 3600
    backoff_after: int = 5


@dataclass(frozen=True)
class Caller:
    """Request details the audit trail keeps (no address: a keyed hash of it)."""

    request_id: str | None = None
    source_hash: bytes | None = None

    def anonymous(self) -> AccessContext:
        return AccessContext(principal="anonymous", kind="anonymous", request_id=self.request_id, source_hash=self.source_hash)

    def of(self, row: dict[str, Any] | None) -> AccessContext:
        if row is None:
            return self.anonymous()
        return AccessContext(principal=f"{row['kind']}:{row['account_id']}", kind=row["kind"], organization=row["organization_id"],
                             account_id=row["account_id"], role=row["role"], request_id=self.request_id, source_hash=self.source_hash)


@dataclass(frozen=True)
class Outcome:
    status: Literal["ok", "invalid", "throttled", "exhausted", "expired", "rejected"]
    account: Account | None = None
    retry_after: int = 0  # seconds, for throttled
    login_key: bytes = b""
    reason: str = ""  # rejected: which password rule (no value)


@dataclass(frozen=True)
class Challenge:
    """A password step passed; the second factor is due. Kept in the (server-side) session."""

    account_id: str
    login_key: bytes
    challenge: str
    started: int
    enrol_secret: bytes | None = None  # sealed new TOTP secret while enrolling

    def to_dict(self) -> dict[str, Any]:
        return {"aid": self.account_id, "key": self.login_key, "id": self.challenge, "at": self.started, "enrol": self.enrol_secret}

    @classmethod
    def from_dict(cls, data: Any) -> Challenge | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(str(data["aid"]), bytes(data["key"]), str(data["id"]), int(data["at"]), data.get("enrol"))
        except (KeyError, TypeError, ValueError):
            return None


def login_key(store: Store, typed: str) -> bytes:
    """Keyed hash of a login name as the throttle sees it (unknown and malformed names too)."""
    parsed = accounts.parse_login(typed)
    name = f"{parsed[0]}:{parsed[1]}" if parsed else "raw:" + unicodedata.normalize("NFKC", typed or "").strip().casefold()[:256]
    return store.blind.token("login.name", name)


def _admit(uow: UnitOfWork, key: bytes, limits: Limits, now: int) -> int:
    """0 when an attempt may be evaluated now, else the seconds to wait. Call under lock_login."""
    window = limits.window_seconds * 1_000_000
    if secrets.randbelow(64) == 0:
        access.purge_failures(uow, now - window)  # now and then: old rows of every name
    failures = access.failures_since(uow, key, now - window)
    n = len(failures)
    wait_until = 0
    if n >= limits.max_failures:
        wait_until = failures[n - limits.max_failures] + window
    elif n >= limits.backoff_after:
        wait_until = failures[-1] + (2 ** (n - limits.backoff_after)) * 1_000_000
    return max(0, math.ceil((wait_until - now) / 1_000_000))


def _audit(store: Store, ctx: AccessContext, action: str, outcome: str, row: dict[str, Any] | None) -> None:
    patient = row["patient_id"] if row and row["kind"] == "patient" else None
    # A patient's logins and failed attempts show in their own access log.
    auditing.event(store, ctx, action, outcome, resource_type="Patient" if patient else None, logical_id=patient, compartment=patient)


def claim_attempt(store: Store, key: bytes, limits: Limits, now: int, typed: str | None = None) -> tuple[int | None, int, dict[str, Any] | None]:
    """Atomically: decide whether a guess on `key` may be evaluated and, if so, count it as a
    failure already. (attempt row id or None when refused, seconds to wait, account row of `typed`)."""
    with store.writing(INTERNAL) as uow:
        access.lock_login(uow, key)
        retry = _admit(uow, key, limits, now)
        row = accounts.row_by_login(uow, store, accounts.parse_login(typed)) if typed is not None else None
        attempt = access.record_failure(uow, key, now) if not retry else None
    return attempt, retry, row


def password_step(store: Store, typed: str, password: str, *, limits: Limits, now: int, caller: Caller) -> Outcome:
    """Check a login name and password. `ok` means the first factor passed (see `needs_totp`)."""
    key = login_key(store, typed)
    attempt, retry, row = claim_attempt(store, key, limits, now, typed)
    if attempt is None:
        _audit(store, caller.of(row), "login", "refused", row)
        return Outcome("throttled", retry_after=retry, login_key=key)
    # Argon2 outside the transaction: it is the slow part, and the attempt is already counted.
    stored = row["password_hash"] if row else None
    ok = passwords.verify(stored, password) and row is not None and bool(row["active"])
    if not ok:
        _audit(store, caller.of(row), "login", "failure", row)
        return Outcome("invalid", login_key=key)
    assert row is not None and stored is not None
    rehashed = passwords.hash_password(password) if passwords.needs_rehash(stored) else None  # parameters changed since
    with store.writing(INTERNAL) as uow:
        access.forget_failure(uow, attempt)  # a right password is not a guess
        if rehashed:
            access.update_account(uow, row["account_id"], password_hash=rehashed)
    return Outcome("ok", account=accounts.from_row(row), login_key=key)


def needs_totp(account: Account) -> bool:
    return account.has_totp or account.totp_required


def start_challenge(store: Store, account: Account, key: bytes, now: int) -> Challenge:
    """The second-factor challenge after a password; a new secret to confirm if not enrolled."""
    enrol = None
    challenge = secrets.token_urlsafe(16)
    if not account.has_totp:
        with store.writing(INTERNAL) as uow:
            enrol = accounts.seal(accounts.shared_key(uow, store.keys), account.account_id, totp.new_secret(), f"totp-pending:{challenge}")
    return Challenge(account.account_id, key, challenge, now, enrol)


def enrolment_secret(store: Store, challenge: Challenge) -> str | None:
    """The not yet confirmed secret of an enrolment (to show once as text and otpauth URI)."""
    if challenge.enrol_secret is None:
        return None
    with store.reading(INTERNAL) as uow:
        key = accounts.shared_key(uow, store.keys)
        return accounts.unseal(key, challenge.account_id, challenge.enrol_secret, f"totp-pending:{challenge.challenge}")


def totp_step(store: Store, challenge: Challenge, code: str, *, limits: Limits, now: int, caller: Caller) -> Outcome:
    """Check a TOTP code for a challenge (or confirm an enrolment). Each code is accepted once."""
    if now - challenge.started > CHALLENGE_SECONDS * 1_000_000:
        return Outcome("expired")
    challenge_key = store.blind.token("login.totp-challenge", challenge.challenge)
    action = "totp.enrol" if challenge.enrol_secret is not None else "login.totp"
    with store.writing(INTERNAL) as uow:
        access.lock_login(uow, challenge.login_key)
        row = access.account_by(uow, account_id=challenge.account_id)
        used = len(access.failures_since(uow, challenge_key, challenge.started))
        retry = _admit(uow, challenge.login_key, limits, now)
        status: str
        if row is None or not row["active"]:
            status = "expired"
        elif used >= MAX_TOTP_ATTEMPTS:
            status = "exhausted"
        elif retry:
            status = "throttled"
        else:
            if challenge.enrol_secret is not None:
                key = accounts.shared_key(uow, store.keys)
                secret = accounts.unseal(key, row["account_id"], challenge.enrol_secret, f"totp-pending:{challenge.challenge}")
                step = totp.matching_step(secret, code, now, None)
                if step is not None:
                    accounts.enrol_totp(uow, store, row["account_id"], secret, step)
            else:
                secret = accounts.totp_secret(uow, store, row) or ""
                step = totp.matching_step(secret, code, now, row["totp_last_step"]) if secret else None
                if step is not None:
                    access.update_account(uow, row["account_id"], totp_last_step=step)
            if step is not None:
                status = "ok"
            else:
                access.record_failure(uow, challenge_key, now)
                access.record_failure(uow, challenge.login_key, now)
                status = "exhausted" if used + 1 >= MAX_TOTP_ATTEMPTS else "invalid"
    if status == "ok":
        if action == "totp.enrol":
            _audit(store, caller.of(row), action, "success", row)
        assert row is not None
        account = dataclasses.replace(accounts.from_row(row), has_totp=True)  # enrolled just now, if not before
        return Outcome("ok", account=account, login_key=challenge.login_key)
    evaluated = status == "invalid" or (status == "exhausted" and used < MAX_TOTP_ATTEMPTS)  # a wrong code vs. no check
    _audit(store, caller.of(row), action, "failure" if evaluated or status == "expired" else "refused", row)
    return Outcome(status, retry_after=retry, login_key=challenge.login_key)  # type: ignore[arg-type]


def logged_in(store: Store, account: Account, caller: Caller, method: str = "password") -> None:
    """Audit the start of a session with rights (after every factor the account needs)."""
    ctx = account.context(caller.request_id, caller.source_hash)
    action = "login" if method == "password" else f"login.{method}"
    patient = account.patient_id if account.kind == "patient" else None
    auditing.event(store, ctx, action, "success", resource_type="Patient" if patient else None, logical_id=patient, compartment=patient)


def logged_out(store: Store, account: Account, caller: Caller) -> None:
    patient = account.patient_id if account.kind == "patient" else None
    auditing.event(store, account.context(caller.request_id, caller.source_hash), "logout", "success",
                   resource_type="Patient" if patient else None, logical_id=patient, compartment=patient)


def activate(store: Store, typed: str, code: str, password: str, *, limits: Limits, now: int, caller: Caller) -> Outcome:
    """Turn a one-time activation code into a password. The code works once, before it expires,
    for the login name (username or CCCD) it was made for; wrong guesses count like passwords."""
    parsed = accounts.parse_login(typed)
    try:
        value = passwords.check_new(password, login_name=parsed[1] if parsed and parsed[0] == "username" else None)
    except passwords.PasswordRejected as exc:
        return Outcome("rejected", reason=exc.code)
    new_hash = passwords.hash_password(value)  # before the lock: the slow part
    key = login_key(store, typed)
    token = accounts.activation_token(store, code)
    with store.writing(INTERNAL) as uow:
        access.lock_login(uow, key)
        retry = _admit(uow, key, limits, now)
        row = accounts.row_by_login(uow, store, parsed)
        valid = (
            not retry and row is not None and bool(row["active"]) and row["activation_hash"] is not None
            and hmac.compare_digest(bytes(row["activation_hash"]), token) and (row["activation_expires"] or 0) > now
        )
        if valid:
            assert row is not None
            access.update_account(uow, row["account_id"], password_hash=new_hash, activation_hash=None, activation_expires=None)
        elif not retry:
            access.record_failure(uow, key, now)
    if retry:
        _audit(store, caller.of(row), "account.activate", "refused", row)
        return Outcome("throttled", retry_after=retry)
    _audit(store, caller.of(row), "account.activate", "success" if valid else "failure", row)
    return Outcome("ok", account=accounts.from_row({**row, "password_hash": new_hash})) if valid and row else Outcome("invalid")


def unlock(store: Store, ctx: AccessContext, typed: str) -> None:
    """Forget the failed attempts on a login name (an operator helping a locked-out person)."""
    if ctx.kind != "operator":
        raise PermissionError("operators only")
    with store.writing(INTERNAL) as uow:
        access.clear_failures(uow, login_key(store, typed))
        auditing.queued(uow, store, ctx, "login.unlock")
