"""Logging in: password step, TOTP step, account activation, and the throttle in front of them.

The throttle counts failed guesses in the database (so every gunicorn worker sees the same
counts), under three keyed hashes of what the attempt names:

- the (source address, login name) pair: at most `max_failures` (20) failures per rolling
  `window` (1 hour) are evaluated, and after `backoff_after` (5) failures an attempt waits
  2^(n-5) seconds after the latest one (1 s, 2 s, 4 s ...). This is what a guesser hits;
- the source address, across every name: at most `source_max_failures` (30) per window, so one
  source cannot spray guesses over many names (165 a minute before);
- the login name, from every source: a ceiling of `account_max_failures` (200) per window,
  well above what one source can add (20), so an attacker from one address cannot lock the real
  user (signing in from another) out; only many sources together can reach it.

The decision and the counting happen in one short transaction under the keys' locks (PostgreSQL
advisory locks, taken in a fixed order; SQLite's single writer): the attempt is counted *before*
the slow Argon2 check and forgotten if it succeeds, so concurrent attempts can never slip past a
limit. A wrong TOTP code counts against the same pair and against its challenge (at most 5
codes per challenge). Successes do not reset the counts: the limits are on guesses per hour,
whoever logs in between. An operator's unlock makes the name's earlier failures stop counting.
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
from ehr.store.keys import now_us
from ehr.store.runtime import Store
from ehr.store.uow import UnitOfWork

MAX_TOTP_ATTEMPTS = 5
CHALLENGE_SECONDS = 600  # a password step's TOTP challenge lives ten minutes


@dataclass(frozen=True)
class Limits:
    max_failures: int = 20  # per (source, name) pair and window, with backoff after `backoff_after`
    window_seconds: int = 3600
    backoff_after: int = 5
    source_max_failures: int = 30  # per source address, across names
    account_max_failures: int = 200  # per name, across sources


@dataclass(frozen=True)
class LoginKeys:
    """The throttle's keys of one attempt (keyed hashes; neither name nor address is stored)."""

    pair: bytes
    source: bytes
    account: bytes
    unlock: bytes


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
    return store.blind.token("login.name", _login_name(typed))


def keys_for(store: Store, typed: str, source_hash: bytes | None) -> LoginKeys:
    name = _login_name(typed)
    source = (source_hash or b"").hex()  # no source (CLI, unit tests): one shared "unknown" source
    return LoginKeys(pair=store.blind.token("login.pair", f"{source}\x1f{name}"), source=store.blind.token("login.source", source),
                     account=store.blind.token("login.name", name), unlock=store.blind.token("login.unlock", name))


def _login_name(typed: str) -> str:
    parsed = accounts.parse_login(typed)
    return f"{parsed[0]}:{parsed[1]}" if parsed else "raw:" + unicodedata.normalize("NFKC", typed or "").strip().casefold()[:256]


def _wait(failures: list[int], cap: int, backoff_after: int | None, window: int, now: int) -> int:
    """Microseconds-until of the next allowed attempt given the failures (oldest first)."""
    n = len(failures)
    wait_until = 0
    if n >= cap:
        wait_until = failures[n - cap] + window
    elif backoff_after is not None and n >= backoff_after:
        wait_until = failures[-1] + (2 ** (n - backoff_after)) * 1_000_000
    return max(0, math.ceil((wait_until - now) / 1_000_000))


def _admit(uow: UnitOfWork, key: bytes, limits: Limits, now: int, since: int | None = None) -> int:
    """0 when an attempt on one key (a pair) may be evaluated now, else the seconds to wait. Call
    under lock_login."""
    window = limits.window_seconds * 1_000_000
    if secrets.randbelow(64) == 0:
        access.purge_failures(uow, now - window)  # now and then: old rows of every key
    failures = access.failures_since(uow, key, max(now - window, since or 0))
    return _wait(failures, limits.max_failures, limits.backoff_after, window, now)


def _admit_all(uow: UnitOfWork, keys: LoginKeys, limits: Limits, now: int) -> int:
    """The wait of an attempt: the longest of its pair's, its source's and its name's."""
    window = limits.window_seconds * 1_000_000
    # An operator's unlock: only the failures after it count (on the name and every pair of it).
    unlocked = max(access.failures_since(uow, keys.unlock, now - window) or [-1]) + 1
    retry = _admit(uow, keys.pair, limits, now, unlocked)
    source = access.failures_since(uow, keys.source, now - window)
    account = access.failures_since(uow, keys.account, max(now - window, unlocked))
    return max(retry, _wait(source, limits.source_max_failures, None, window, now),
               _wait(account, limits.account_max_failures, None, window, now))


def _lock_all(uow: UnitOfWork, keys: LoginKeys) -> None:
    for key in sorted({keys.pair, keys.source, keys.account}):  # one order everywhere: no deadlock
        access.lock_login(uow, key)


def _count(uow: UnitOfWork, keys: LoginKeys, now: int) -> tuple[int, ...]:
    return tuple(access.record_failure(uow, key, now) for key in (keys.pair, keys.source, keys.account))


def _audit(store: Store, ctx: AccessContext, action: str, outcome: str, row: dict[str, Any] | None) -> None:
    patient = row["patient_id"] if row and row["kind"] == "patient" else None
    # A patient's logins and failed attempts show in their own access log.
    auditing.event(store, ctx, action, outcome, resource_type="Patient" if patient else None, logical_id=patient, compartment=patient)


def claim_attempt(store: Store, keys: LoginKeys, limits: Limits, now: int,
                  typed: str | None = None) -> tuple[tuple[int, ...] | None, int, dict[str, Any] | None]:
    """Atomically: decide whether a guess may be evaluated and, if so, count it as a failure
    already. (attempt row ids or None when refused, seconds to wait, account row of `typed`)."""
    with store.writing(INTERNAL) as uow:
        _lock_all(uow, keys)
        retry = _admit_all(uow, keys, limits, now)
        row = accounts.row_by_login(uow, store, accounts.parse_login(typed)) if typed is not None else None
        attempt = _count(uow, keys, now) if not retry else None
    return attempt, retry, row


def password_step(store: Store, typed: str, password: str, *, limits: Limits, now: int, caller: Caller) -> Outcome:
    """Check a login name and password. `ok` means the first factor passed (see `needs_totp`)."""
    keys = keys_for(store, typed, caller.source_hash)
    key = keys.pair  # the second factor counts against the same pair
    attempt, retry, row = claim_attempt(store, keys, limits, now, typed)
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
        for row_id in attempt:
            access.forget_failure(uow, row_id)  # a right password is not a guess
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
    keys = keys_for(store, typed, caller.source_hash)
    token = accounts.activation_token(store, code)
    with store.writing(INTERNAL) as uow:
        _lock_all(uow, keys)
        retry = _admit_all(uow, keys, limits, now)
        row = accounts.row_by_login(uow, store, parsed)
        valid = (
            not retry and row is not None and bool(row["active"]) and row["activation_hash"] is not None
            and hmac.compare_digest(bytes(row["activation_hash"]), token) and (row["activation_expires"] or 0) > now
        )
        if valid:
            assert row is not None
            access.update_account(uow, row["account_id"], password_hash=new_hash, activation_hash=None, activation_expires=None)
        elif not retry:
            _count(uow, keys, now)
    if retry:
        _audit(store, caller.of(row), "account.activate", "refused", row)
        return Outcome("throttled", retry_after=retry)
    _audit(store, caller.of(row), "account.activate", "success" if valid else "failure", row)
    return Outcome("ok", account=accounts.from_row({**row, "password_hash": new_hash})) if valid and row else Outcome("invalid")


def unlock(store: Store, ctx: AccessContext, typed: str, now: int | None = None) -> None:
    """Forget the failed attempts on a login name from every source (an operator helping a
    locked-out person)."""
    if ctx.kind != "operator":
        raise PermissionError("operators only")
    keys = keys_for(store, typed, None)
    with store.writing(INTERNAL) as uow:
        # The pairs' rows carry the sources' hashes, which cannot be listed by name: an unlock
        # marker makes every failure on the name before it stop counting, from every source.
        access.clear_failures(uow, keys.account)
        access.record_failure(uow, keys.unlock, now if now is not None else now_us())
        auditing.queued(uow, store, ctx, "login.unlock")
