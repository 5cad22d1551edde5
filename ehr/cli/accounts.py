"""`flask ehr staff ...` and `flask ehr patient-account ...`: operators create the web accounts of
clinic staff and patients, reset a lost second factor, disable an account, lift a lockout.
Every command is audited under the operator's name; passwords are prompted, never arguments."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from ehr.cli.access import _fail, _operator
from ehr.fhir.outcomes import FhirError
from ehr.services import accounts, logins
from ehr.services.context import STAFF_ROLES
from ehr.store.keys import now_us


def _days() -> int:
    return int(current_app.config.get("EHR_ACTIVATION_DAYS") or accounts.ACTIVATION_DAYS)


@click.group("staff")
def staff() -> None:
    """Web accounts of clinic staff (doctor, nurse, receptionist, facility admin)."""


@staff.command("create")
@click.option("--username", required=True, help="Login name: lower-case letters, digits, '.', '_', '-'.")
@click.option("--role", required=True, type=click.Choice(STAFF_ROLES))
@click.option("--organization", required=True, help="Organization id of the facility.")
@click.option("--name", "display_name", required=True, help="The person's name as shown on the pages (stored encrypted).")
@click.option("--activation-code", is_flag=True, help="Print a one-time activation code instead of asking for a password.")
@click.option("--licence", default=None, help="Practising-licence number (chứng chỉ hành nghề), e.g. 000123/HNO-CCHN.")
@with_appcontext
def staff_create(username: str, role: str, organization: str, display_name: str, activation_code: bool, licence: str | None) -> None:
    """Create a staff account. Doctors and admins set up TOTP at their first login."""
    password = None
    if not activation_code:
        password = click.prompt("Password (10+ characters)", hide_input=True, confirmation_prompt=True)
    try:
        account_id, code = accounts.create_staff(
            current_app.extensions["ehr.store"], _operator(), username=username, role=role, organization_id=organization,
            display_name=display_name, password=password, now=now_us(), activation_days=_days(), licence=licence,
        )
    except (accounts.AccountError, FhirError) as exc:
        raise _fail(exc) from None
    click.echo(f"created staff account {account_id}")
    if code:
        click.echo(f"activation code (shown once, valid {_days()} days): {code}")


@staff.command("reset-totp")
@click.option("--username", required=True)
@with_appcontext
def staff_reset_totp(username: str) -> None:
    """Forget the second factor (lost phone); the person enrols again at the next login."""
    try:
        accounts.reset_totp(current_app.extensions["ehr.store"], _operator(), username)
    except (accounts.AccountError, FhirError) as exc:
        raise _fail(exc) from None
    click.echo("TOTP reset; the account's sessions ended")


@staff.command("disable")
@click.option("--username", required=True)
@with_appcontext
def staff_disable(username: str) -> None:
    """Disable an account: its sessions end at once."""
    try:
        accounts.set_active(current_app.extensions["ehr.store"], _operator(), username, False)
    except (accounts.AccountError, FhirError) as exc:
        raise _fail(exc) from None
    click.echo("disabled")


@staff.command("enable")
@click.option("--username", required=True)
@with_appcontext
def staff_enable(username: str) -> None:
    try:
        accounts.set_active(current_app.extensions["ehr.store"], _operator(), username, True)
    except (accounts.AccountError, FhirError) as exc:
        raise _fail(exc) from None
    click.echo("enabled")


@staff.command("unlock")
@click.option("--username", required=True)
@with_appcontext
def staff_unlock(username: str) -> None:
    """Forget the failed login attempts on a username (after checking who is asking)."""
    logins.unlock(current_app.extensions["ehr.store"], _operator(), username)
    click.echo("unlocked")


@click.group("patient-account")
def patient_account() -> None:
    """Web accounts of patients (bound to their record and citizen ID)."""


@patient_account.command("create")
@click.option("--patient", "patient_id", required=True, help="Patient id (the Patient must hold one active CCCD).")
@with_appcontext
def patient_account_create(patient_id: str) -> None:
    """Print a one-time activation code for the patient (they log in with their CCCD)."""
    try:
        code = accounts.create_patient_account(current_app.extensions["ehr.store"], _operator(), patient_id, now=now_us(), activation_days=_days())
    except (accounts.AccountError, FhirError) as exc:
        raise _fail(exc) from None
    click.echo(f"activation code (shown once, valid {_days()} days): {code}")
