"""Accounts of people who log in to the web pages: clinic staff and patients.

- Staff accounts (doctor, nurse, receptionist, facility admin) belong to one facility. An
  operator (CLI) or an admin of that facility creates them, with a password or with a one-time
  activation code the person turns into a password.
- Patient accounts are bound to one registered Patient and to that patient's citizen ID (CCCD),
  kept only as a keyed blind token: patients log in with their CCCD. Clinic staff create the
  account at registration (the patient receives an activation code), or the account is created
  at the patient's first login through the external identity provider (`ehr.auth.oidc`).

Nothing personal is stored in plaintext: the display name and the TOTP secret are encrypted under
the shared data key, passwords are Argon2id hashes, activation codes keyed hashes. Every change is
audited under the acting principal, without the values.
"""

from __future__ import annotations

import json
import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any

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
from ehr.store.keys import DataKeyStore
from ehr.store.runtime import Store
from ehr.store.schema import SHARED_COMPARTMENT
from ehr.store.uow import UnitOfWork

TOTP_REQUIRED_ROLES = ("doctor", "admin")  # clinicians who sign and admins who grant: always two factors
ACTIVATION_DAYS = 7
_USERNAME = re.compile(r"^[a-z][a-z0-9._-]{2,63}$")  # starts with a letter: never mistaken for a CCCD
# Activation codes: 12 symbols of an alphabet without look-alikes (0/O, 1/I/L, U/V), ~59 bits.
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTWXYZ23456789"
_CODE_LENGTH = 12


class AccountError(ValueError):
    """An operator's or admin's input is not acceptable; the message names the field, no values."""


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


def create_staff(
    store: Store, ctx: AccessContext, *, username: str, role: str, organization_id: str, display_name: str,
    password: str | None = None, now: int, activation_days: int = ACTIVATION_DAYS,
) -> tuple[str, str | None]:
    """Create a staff account; (account id, activation code or None when a password was given)."""
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
    password_hash = None
    if password is not None:
        try:
            password_hash = passwords.hash_password(passwords.check_new(password, login_name=name))
        except passwords.PasswordRejected as exc:
            raise AccountError(f"password: {exc}") from None
    code = None if password_hash else new_activation_code()
    account_id = str(uuid.uuid4())
    try:
        _insert_staff(store, ctx, account_id, name, role, organization_id, shown, password_hash, code, now, activation_days)
    except IntegrityError:
        raise AccountError("username: already taken") from None  # by a concurrent creation
    return account_id, code


def _insert_staff(
    store: Store, ctx: AccessContext, account_id: str, name: str, role: str, organization_id: str, shown: str,
    password_hash: str | None, code: str | None, now: int, activation_days: int,
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
        ))
        auditing.queued(uow, store, ctx, "account.create", resource_type="Organization", logical_id=organization_id)


def _patient_cccd(store: Store, ctx: AccessContext, patient_id: str) -> str:
    """The one active CCCD of a Patient the context may see."""
    with store.reading(policy.gate(ctx)) as uow:
        found = resource_service.read_live(uow, store, "Patient", patient_id, action="account.create")
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
