"""Accounts of people who log in to the web pages: clinic staff and patients.

- Staff accounts (doctor, nurse, receptionist, facility admin) belong to one facility. An
  operator (CLI) or an admin of that facility creates them, with a password or with a one-time
  activation code the person turns into a password.
- Patient accounts are bound to one registered Patient and to that patient's citizen ID (CCCD),
  kept only as a keyed blind token: patients log in with their CCCD. Clinic staff create the
  account at registration (the patient receives an activation code), or the account is created
  at the patient's first login through the external identity provider (`ehr.auth.oidc`).

A facility admin's staff page creates accounts with a temporary password, and resets forgotten
ones to a new temporary password; either must be replaced at the next sign-in
(`must_change_password`, enforced by `ehr.auth.current.login_required`). Everyone changes their
own password (`change_password`); the desk gives a patient who forgot theirs a new activation
code (`reset_patient_account`).

Nothing personal is stored in plaintext: the display name, the practising-licence number and the
TOTP secret are encrypted under the shared data key, passwords are Argon2id hashes, activation
codes keyed hashes. Every change is audited under the acting principal, without the values.
"""

from __future__ import annotations

import json
import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select

from sqlalchemy.exc import IntegrityError

from ehr.crypto.envelope import DataKey
from ehr.fhir.outcomes import Issue
from ehr.identity.rules import IdentifierError, check_cccd
from ehr.services import auditing, indexing, passwords, policy
from ehr.services import resources as resource_service
from ehr.services import rules as patient_rules
from ehr.services.context import STAFF_ROLES, AccessContext
from ehr.services.policy import Denied
from ehr.store import access, index
from ehr.store.access import INTERNAL
from ehr.store.keys import DataKeyStore, now_us
from ehr.store.runtime import Store
from ehr.store.schema import SHARED_COMPARTMENT
from ehr.store.schema import accounts as accounts_table
from ehr.store.uow import UnitOfWork

TOTP_REQUIRED_ROLES = ("doctor", "admin")  # clinicians who sign and admins who grant: always two factors
ACTIVATION_DAYS = 7
_USERNAME = re.compile(r"^[a-z][a-z0-9._-]{2,63}$")  # starts with a letter: never mistaken for a CCCD
# Activation codes: 12 symbols of an alphabet without look-alikes (0/O, 1/I/L, U/V), ~59 bits.
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTWXYZ23456789"
_CODE_LENGTH = 12
# Practising licence numbers (chứng chỉ hành nghề) as printed: "000123/HNO-CCHN", "0012345/BYT-CCHN".
_LICENCE = re.compile(r"^[A-Z0-9][A-Z0-9/.\-]{0,39}$")
CHANGE_MAX_FAILURES = 5  # wrong current passwords per account and hour on the change page
CHANGE_WINDOW_US = 3600 * 1_000_000


class AccountError(ValueError):
    """An operator's or admin's input is not acceptable; the message names the field, no values."""

    @property
    def field(self) -> str:
        """The field the message starts with ("username", "role", "licence" ...), for pages to translate."""
        text = str(self)
        return text.split(":", 1)[0] if ":" in text else ""


@dataclass(frozen=True)
class Account:
    account_id: str
    kind: str  # staff or patient
    role: str  # doctor, nurse, receptionist, admin, patient
    organization_id: str | None
    patient_id: str | None
    username: str | None
    active: bool
    has_password: bool
    has_totp: bool
    must_change_password: bool = False  # signed in with a temporary password: no other page until changed

    @property
    def principal(self) -> str:
        return f"{self.kind}:{self.account_id}"

    @property
    def totp_required(self) -> bool:
        return self.kind == "staff" and self.role in TOTP_REQUIRED_ROLES

    def context(self, request_id: str | None = None, source_hash: bytes | None = None) -> AccessContext:
        """The access context of this person signed in (what page views pass to services)."""
        if self.kind == "patient" and self.patient_id:
            return policy.patient_context(self.account_id, self.patient_id, request_id, source_hash)
        return policy.staff_context(self.account_id, self.organization_id or "", self.role, request_id, source_hash)


def shared_key(uow: UnitOfWork, keys: DataKeyStore) -> DataKey:
    """The key account secrets are sealed with: the shared compartment's, which is never replaced
    (only re-wrapped when the master key rotates)."""
    return keys.for_write(uow, SHARED_COMPARTMENT)


def _aad(account_id: str, purpose: str) -> bytes:
    return f"ehr-account|1|{account_id}|{purpose}".encode()


def seal(key: DataKey, account_id: str, text: str, purpose: str) -> bytes:
    """Encrypt an account's secret or personal text, bound to the account and the purpose (a
    ciphertext copied to another account or field fails to open)."""
    return key.seal(text.encode("utf-8"), _aad(account_id, purpose))


def unseal(key: DataKey, account_id: str, blob: bytes, purpose: str) -> str:
    return key.open(blob, _aad(account_id, purpose)).decode("utf-8")


def from_row(row: dict[str, Any]) -> Account:
    return Account(
        account_id=row["account_id"], kind=row["kind"], role=row["role"], organization_id=row["organization_id"],
        patient_id=row["patient_id"], username=row["username"], active=bool(row["active"]),
        has_password=row["password_hash"] is not None, has_totp=row["totp_secret"] is not None,
        must_change_password=bool(row.get("must_change_password")),
    )


def normalize_username(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip().casefold()


def national_id_token(store: Store, number: str) -> bytes:
    """The account's blind token of its CCCD (its own purpose: not linkable to the search index)."""
    return store.blind.token("account.national-id", number)


def parse_login(value: str) -> tuple[str, str] | None:
    """("cccd", number) or ("username", name) of what a person typed, or None if it is neither."""
    compact = "".join(unicodedata.normalize("NFKC", value or "").split())
    if compact.isdigit():
        try:
            return "cccd", check_cccd(compact)
        except IdentifierError:
            return None
    name = normalize_username(value or "")
    return ("username", name) if _USERNAME.match(name) else None


def row_by_login(uow: UnitOfWork, store: Store, login: tuple[str, str] | None) -> dict[str, Any] | None:
    if login is None:
        return None
    kind, value = login
    if kind == "cccd":
        return access.account_by(uow, kind="patient", national_id_hash=national_id_token(store, value))
    return access.account_by(uow, kind="staff", username=value)


def get(store: Store, account_id: str) -> Account | None:
    with store.reading(INTERNAL) as uow:
        row = access.account_by(uow, account_id=account_id)
    return from_row(row) if row else None


def display_name(store: Store, account_id: str) -> str | None:
    """A staff member's name as entered at creation (patients' names live in their record)."""
    with store.reading(INTERNAL) as uow:
        row = access.account_by(uow, account_id=account_id)
        if row is None or row["display_name"] is None:
            return None
        return unseal(shared_key(uow, store.keys), account_id, row["display_name"], "display_name")


def new_activation_code() -> str:
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, _CODE_LENGTH, 4))


def activation_token(store: Store, code: str) -> bytes:
    """Keyed hash of a code as typed (case, spaces and dashes do not matter)."""
    normalized = "".join(ch for ch in (code or "").upper() if ch.isalnum())
    return store.blind.token("account.activation", normalized)


def _require_admin_of(ctx: AccessContext, organization_id: str, action: str) -> None:
    if ctx.kind == "operator":
        return
    if ctx.kind == "staff" and ctx.role == "admin" and ctx.organization == organization_id:
        return
    raise Denied(403, [Issue("forbidden", f"{action} is for operators and admins of the facility")], action)


def normalize_licence(value: str | None) -> str | None:
    """A practising-licence number as stored (upper case, no spaces), None when left empty."""
    text = "".join(unicodedata.normalize("NFKC", value or "").split()).upper()
    if not text:
        return None
    if not _LICENCE.match(text):
        raise AccountError("licence: up to 40 letters, digits, '/', '-' or '.'")
    return text


def new_temporary_password(login_name: str | None = None) -> str:
    """A one-time password a facility admin hands over (~82 bits, no look-alike symbols); it
    passes the rules for new passwords, so nothing weaker than a chosen one is ever stored."""
    while True:
        raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(16))
        value = "-".join(raw[i : i + 4] for i in range(0, 16, 4))
        try:
            return passwords.check_new(value, login_name=login_name)
        except passwords.PasswordRejected:
            continue  # (astronomically rare) contains the login name: draw again


def create_staff(
    store: Store, ctx: AccessContext, *, username: str, role: str, organization_id: str, display_name: str,
    password: str | None = None, now: int, activation_days: int = ACTIVATION_DAYS, licence: str | None = None,
    temporary: bool = False,
) -> tuple[str, str | None]:
    """Create a staff account; (account id, secret to hand over or None when a password was given).

    The secret is a one-time activation code, or with `temporary` (the admin page) a temporary
    password that must be replaced at the first sign-in."""
    _require_admin_of(ctx, organization_id, "account.create")
    name = normalize_username(username)
    if not _USERNAME.match(name):
        raise AccountError("username: 3-64 lower-case letters, digits, '.', '_' or '-', starting with a letter")
    if role not in STAFF_ROLES:
        raise AccountError(f"role: one of {', '.join(STAFF_ROLES)}")
    shown = " ".join((display_name or "").split())
    if not shown or len(shown) > 200:
        raise AccountError("display name: 1-200 characters")
    if not organization_id:
        raise AccountError("organization: the facility's Organization id")
    licence_number = normalize_licence(licence)
    handed: str | None = None
    if temporary:
        password = handed = new_temporary_password(name)
    password_hash = None
    if password is not None:
        try:
            password_hash = passwords.hash_password(passwords.check_new(password, login_name=name))
        except passwords.PasswordRejected as exc:
            raise AccountError(f"password: {exc}") from None
    code = None if password_hash else new_activation_code()
    account_id = str(uuid.uuid4())
    extra = dict(licence_number=licence_number, must_change_password=temporary)
    try:
        _insert_staff(store, ctx, account_id, name, role, organization_id, shown, password_hash, code, now, activation_days, extra)
    except IntegrityError:
        raise AccountError("username: already taken") from None  # by a concurrent creation
    return account_id, handed or code


def _insert_staff(
    store: Store, ctx: AccessContext, account_id: str, name: str, role: str, organization_id: str, shown: str,
    password_hash: str | None, code: str | None, now: int, activation_days: int, extra: dict[str, Any],
) -> None:
    with store.writing(INTERNAL) as uow:
        if not index.live_of_type(uow, "Organization", [organization_id], None, 1):
            raise AccountError("organization: no such Organization on this server")
        if access.account_by(uow, username=name) is not None:
            raise AccountError("username: already taken")
        key = shared_key(uow, store.keys)
        access.insert_account(uow, dict(
            account_id=account_id, kind="staff", username=name, national_id_hash=None, patient_id=None,
            organization_id=organization_id, role=role, password_hash=password_hash, totp_secret=None, totp_key_id=None,
            totp_last_step=None, active=True, activation_hash=activation_token(store, code) if code else None,
            activation_expires=now + activation_days * 86_400_000_000 if code else None,
            display_name=seal(key, account_id, shown, "display_name"), created_at=now,
            must_change_password=bool(extra["must_change_password"]),
            licence_number=seal(key, account_id, extra["licence_number"], "licence") if extra["licence_number"] else None,
        ))
        auditing.queued(uow, store, ctx, "account.create", resource_type="Organization", logical_id=organization_id)


_HOLDING = ("registered", "admin")  # care sources that make a facility the patient's own


def _holds_record(store: Store, organization: str, patient_id: str) -> bool:
    with store.reading(INTERNAL) as uow:
        if access.creator_of(uow, "Patient", patient_id) == organization:
            return True
        return any(r["organization_id"] == organization and r["source"] in _HOLDING
                   for r in access.care_for_patient(uow, patient_id, now_us()))


def _patient_cccd(store: Store, ctx: AccessContext, patient_id: str, action: str = "account.create") -> str:
    """The one active CCCD of a Patient the context may see."""
    with store.reading(policy.gate(ctx)) as uow:
        found = resource_service.read_live(uow, store, "Patient", patient_id, action=action)
    if ctx.kind == "staff" and not _holds_record(store, str(ctx.organization or ""), patient_id):
        # Seeing a record (consent, paper consent, break-glass) is not holding it: a code opens the
        # patient's whole health book, so only the facility the patient registered with or is
        # recorded in the care of hands one out.
        raise Denied(403, [Issue("forbidden", "only the patient's own facility issues health-book codes")], action)
    numbers = patient_rules.national_ids(json.loads(found.body or b"{}"), store.systems)
    if len(numbers) != 1:
        raise AccountError("the Patient must be active and hold exactly one active CCCD identifier")
    return numbers[0]


def create_patient_account(store: Store, ctx: AccessContext, patient_id: str, *, now: int, activation_days: int = ACTIVATION_DAYS) -> str:
    """Bind a new patient account to a registered Patient; returns the one-time activation code.

    Clinic staff who see the patient (or an operator) do this at registration. If the patient
    already has an account that was never activated, it gets a fresh code (the old one dies).
    """
    if ctx.kind not in ("operator", "staff"):
        raise Denied(403, [Issue("forbidden", "patient accounts are created by clinic staff")], "account.create")
    number = _patient_cccd(store, ctx, patient_id)
    token = national_id_token(store, number)
    code = new_activation_code()
    values = dict(activation_hash=activation_token(store, code), activation_expires=now + activation_days * 86_400_000_000)
    with store.writing(INTERNAL) as uow:
        row = access.account_by(uow, national_id_hash=token)
        if row is not None and row["password_hash"] is not None:
            raise AccountError("this patient's account is already activated")
        if row is None:
            access.insert_account(uow, dict(
                account_id=str(uuid.uuid4()), kind="patient", username=None, national_id_hash=token, patient_id=patient_id,
                organization_id=None, role="patient", password_hash=None, totp_secret=None, totp_key_id=None,
                totp_last_step=None, active=True, display_name=None, created_at=now, **values,
            ))
        else:
            access.update_account(uow, row["account_id"], patient_id=patient_id, **values)
        auditing.queued(uow, store, ctx, "account.create", resource_type="Patient", logical_id=patient_id, compartment=patient_id)
    return code


def patient_account_for(store: Store, ctx: AccessContext, national_id: str, *, now: int) -> Account | None:
    """The account of the active registered Patient holding this CCCD, created on first use
    (a login through the identity provider); None when no single active Patient holds it."""
    try:
        return _patient_account_for(store, ctx, national_id, now)
    except IntegrityError:
        # The patient's first login happened twice at once and the other request created the
        # account first (unique national_id_hash): use that one.
        return _patient_account_for(store, ctx, national_id, now)


def _patient_account_for(store: Store, ctx: AccessContext, national_id: str, now: int) -> Account | None:
    token = national_id_token(store, national_id)
    with store.writing(INTERNAL) as uow:
        holders = index.token_holders(uow, "Patient", indexing.NATIONAL_ID, indexing.national_id_token(store, national_id))
        if len(holders) != 1:
            return None
        patient_id = holders[0]
        row = access.account_by(uow, national_id_hash=token)
        if row is None:
            account_id = str(uuid.uuid4())
            access.insert_account(uow, dict(
                account_id=account_id, kind="patient", username=None, national_id_hash=token, patient_id=patient_id,
                organization_id=None, role="patient", password_hash=None, totp_secret=None, totp_key_id=None,
                totp_last_step=None, active=True, activation_hash=None, activation_expires=None, display_name=None, created_at=now,
            ))
            auditing.queued(uow, store, ctx, "account.create", resource_type="Patient", logical_id=patient_id, compartment=patient_id)
            row = access.account_by(uow, account_id=account_id)
        elif row["patient_id"] != patient_id:
            # The CCCD now belongs to another record (the old one was merged into it): follow it.
            access.update_account(uow, row["account_id"], patient_id=patient_id)
            auditing.queued(uow, store, ctx, "account.link", resource_type="Patient", logical_id=patient_id, compartment=patient_id)
            row = access.account_by(uow, account_id=row["account_id"])
    return from_row(row) if row else None


def _staff_row(uow: UnitOfWork, ctx: AccessContext, username: str, action: str) -> dict[str, Any]:
    row = access.account_by(uow, kind="staff", username=normalize_username(username))
    if row is None:
        raise AccountError("no staff account with this username")
    _require_admin_of(ctx, row["organization_id"] or "", action)
    return row


def reset_totp(store: Store, ctx: AccessContext, username: str) -> None:
    """Forget a staff member's second factor (lost phone): they enrol again at their next login.
    Their sessions end now."""
    with store.writing(INTERNAL) as uow:
        row = _staff_row(uow, ctx, username, "totp.reset")
        access.update_account(uow, row["account_id"], totp_secret=None, totp_key_id=None, totp_last_step=None)
        access.sessions_of_account_delete(uow, row["account_id"])
        auditing.queued(uow, store, ctx, "totp.reset", resource_type="Organization", logical_id=row["organization_id"])


def set_active(store: Store, ctx: AccessContext, username: str, active: bool) -> None:
    """Disable (or enable again) a staff account; disabling ends its sessions at once."""
    with store.writing(INTERNAL) as uow:
        row = _staff_row(uow, ctx, username, "account.disable")
        access.update_account(uow, row["account_id"], active=active)
        if not active:
            access.sessions_of_account_delete(uow, row["account_id"])
        auditing.queued(uow, store, ctx, "account.enable" if active else "account.disable", resource_type="Organization",
                        logical_id=row["organization_id"])


def enrol_totp(uow: UnitOfWork, store: Store, account_id: str, secret: str, step: int) -> None:
    """Store a confirmed TOTP secret (encrypted) and the step of the code that confirmed it."""
    key = shared_key(uow, store.keys)
    access.update_account(uow, account_id, totp_secret=seal(key, account_id, secret, "totp"), totp_key_id=key.key_id, totp_last_step=step)


def totp_secret(uow: UnitOfWork, store: Store, row: dict[str, Any]) -> str | None:
    if row["totp_secret"] is None:
        return None
    key = store.keys.by_id(uow, row["totp_key_id"])
    return unseal(key, row["account_id"], row["totp_secret"], "totp")


# --- the facility admin's staff page, password changes, resets ----------------------------------


@dataclass(frozen=True)
class StaffMember:
    """One line of the facility admin's staff list."""

    account_id: str
    username: str
    name: str
    role: str
    active: bool
    has_totp: bool
    must_change_password: bool
    activation_pending: bool
    licence: str | None


def licence_of(key: DataKey, row: dict[str, Any]) -> str | None:
    blob = row.get("licence_number")
    return unseal(key, row["account_id"], blob, "licence") if blob else None


def list_staff(store: Store, ctx: AccessContext, organization_id: str) -> list[StaffMember]:
    """The facility's staff accounts, by name (operators and the facility's admins only)."""
    _require_admin_of(ctx, organization_id, "account.list")
    stmt = select(accounts_table).where(accounts_table.c.kind == "staff", accounts_table.c.organization_id == organization_id)
    with store.reading(INTERNAL) as uow:
        key = shared_key(uow, store.keys)
        rows = [dict(r) for r in uow.execute(stmt).mappings()]
        members = [StaffMember(
            account_id=r["account_id"], username=r["username"] or "", role=r["role"], active=bool(r["active"]),
            name=unseal(key, r["account_id"], r["display_name"], "display_name") if r["display_name"] else "",
            has_totp=r["totp_secret"] is not None, must_change_password=bool(r["must_change_password"]),
            activation_pending=r["password_hash"] is None and r["activation_hash"] is not None, licence=licence_of(key, r),
        ) for r in rows]
    return sorted(members, key=lambda m: (unicodedata.normalize("NFD", m.name).casefold(), m.username))


def reset_password(store: Store, ctx: AccessContext, username: str, *, with_totp: bool = False) -> str:
    """A new temporary password for a staff member who forgot theirs (shown once to the admin,
    replaced at the next sign-in); the old one stops working and the account's sessions end.
    `with_totp` also forgets the second factor (a lost phone): they enrol again."""
    with store.reading(INTERNAL) as uow:
        name = _staff_row(uow, ctx, username, "password.reset")["username"]
    temporary = new_temporary_password(name)
    new_hash = passwords.hash_password(temporary)  # the slow part, outside the transaction
    with store.writing(INTERNAL) as uow:
        row = _staff_row(uow, ctx, username, "password.reset")
        values: dict[str, Any] = dict(password_hash=new_hash, must_change_password=True, activation_hash=None, activation_expires=None)
        if with_totp:
            values.update(totp_secret=None, totp_key_id=None, totp_last_step=None)
        access.update_account(uow, row["account_id"], **values)
        access.sessions_of_account_delete(uow, row["account_id"])
        auditing.queued(uow, store, ctx, "password.reset", resource_type="Organization", logical_id=row["organization_id"])
        if with_totp:
            auditing.queued(uow, store, ctx, "totp.reset", resource_type="Organization", logical_id=row["organization_id"])
    return temporary


@dataclass(frozen=True)
class PasswordChange:
    status: Literal["ok", "wrong", "rejected", "same", "throttled"]
    reason: str = ""  # rejected: which rule of passwords.check_new (no value)
    retry_after: int = 0  # throttled: seconds


def _change_audit(account: Account, ctx: AccessContext) -> dict[str, Any]:
    patient = account.patient_id if account.kind == "patient" else None
    # A patient's password change shows in their own access log; a staff member's under the facility.
    if patient:
        return dict(resource_type="Patient", logical_id=patient, compartment=patient)
    return dict(resource_type="Organization", logical_id=account.organization_id)


def change_password(store: Store, ctx: AccessContext, account: Account, current: str, new: str, *, now: int) -> PasswordChange:
    """The signed-in person replaces their password (a temporary one included): the current one
    must be right, the new one meet the rules and differ from it. Every session of the account
    ends (the page starts a new one for the person changing it). Wrong current passwords are
    counted like login guesses: at most CHANGE_MAX_FAILURES per hour, then 429."""
    try:
        value = passwords.check_new(new, login_name=account.username)
    except passwords.PasswordRejected as exc:
        return PasswordChange("rejected", reason=exc.code)
    if passwords.normalize(current) == value:
        return PasswordChange("same")
    key = store.blind.token("password.change", account.account_id)
    with store.writing(INTERNAL) as uow:
        access.lock_login(uow, key)
        failures = access.failures_since(uow, key, now - CHANGE_WINDOW_US)
        attempt = access.record_failure(uow, key, now) if len(failures) < CHANGE_MAX_FAILURES else None
        row = access.account_by(uow, account_id=account.account_id)
    if attempt is None:
        retry = max(1, (failures[-CHANGE_MAX_FAILURES] + CHANGE_WINDOW_US - now) // 1_000_000)
        auditing.event(store, ctx, "password.change", "refused", **_change_audit(account, ctx))
        return PasswordChange("throttled", retry_after=int(retry))
    # Argon2 outside the transaction (the attempt is counted already).
    if row is None or not passwords.verify(row["password_hash"], current):
        auditing.event(store, ctx, "password.change", "failure", **_change_audit(account, ctx))
        return PasswordChange("wrong")
    new_hash = passwords.hash_password(value)
    with store.writing(INTERNAL) as uow:
        access.forget_failure(uow, attempt)
        access.update_account(uow, account.account_id, password_hash=new_hash, must_change_password=False,
                              activation_hash=None, activation_expires=None)
        access.sessions_of_account_delete(uow, account.account_id)  # a thief's copy of a session ends here
        auditing.queued(uow, store, ctx, "password.change", **_change_audit(account, ctx))
    return PasswordChange("ok")


RESET_ROLES = ("receptionist", "admin", "doctor")


def reset_patient_account(store: Store, ctx: AccessContext, patient_id: str, *, now: int, activation_days: int = ACTIVATION_DAYS) -> str:
    """A patient who forgot their password (or lost their second factor) comes to the desk; once
    the staff member has checked their identity, they get a new activation code. The old
    password and second factor stop working at once and the account's sessions end. Staff of a
    facility that sees the patient (receptionist, admin, doctor) or an operator; audited in the
    patient's own access log."""
    if ctx.kind != "operator" and not (ctx.kind == "staff" and ctx.role in RESET_ROLES):
        raise Denied(403, [Issue("forbidden", "patient accounts are reset by reception, doctors or admins")], "account.reset")
    number = _patient_cccd(store, ctx, patient_id, "account.reset")
    token = national_id_token(store, number)
    code = new_activation_code()
    values: dict[str, Any] = dict(
        activation_hash=activation_token(store, code), activation_expires=now + activation_days * 86_400_000_000, password_hash=None,
        must_change_password=False, totp_secret=None, totp_key_id=None, totp_last_step=None,
    )
    with store.writing(INTERNAL) as uow:
        row = access.account_by(uow, national_id_hash=token)
        if row is None:
            access.insert_account(uow, dict(
                account_id=str(uuid.uuid4()), kind="patient", username=None, national_id_hash=token, patient_id=patient_id,
                organization_id=None, role="patient", display_name=None, created_at=now, active=True, **values,
            ))
        else:
            access.update_account(uow, row["account_id"], **values)  # the account stays bound to its own Patient
            access.sessions_of_account_delete(uow, row["account_id"])
        auditing.queued(uow, store, ctx, "account.reset", resource_type="Patient", logical_id=patient_id, compartment=patient_id)
    return code
