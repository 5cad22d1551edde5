"""`flask ehr keys ...`: master-key rotation and crypto-shredding."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from ehr.services import keys as key_service
from ehr.services.context import AccessContext


@click.group("keys")
def keys() -> None:
    """Master keys and data keys."""


@keys.command("rotate")
@click.option("--new-master", is_flag=True, help="First add a fresh primary key to the master key file.")
@click.option("--batch", default=500, show_default=True, help="Data keys re-wrapped per transaction.")
@with_appcontext
def rotate(new_master: bool, batch: int) -> None:
    """Re-wrap every data key under the primary master key (online, resumable, idempotent)."""
    store = current_app.extensions["ehr.store"]
    try:
        if new_master:
            click.echo(f"new primary master key: {key_service.new_master_key(store)}")
        report = key_service.rotate(store, AccessContext.operator(), batch=batch)
    except key_service.KeyActionError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"re-wrapped {report.rewrapped} data keys under {report.primary}; failed: {report.failed}")
    if report.failed:
        raise click.ClickException(f"{report.failed} data keys failed to authenticate; see the audit log")


@keys.command("shred")
@click.argument("patient_id")
@click.option("--legal-reason", default=None, help="Legal basis for erasing inside the retention period.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def shred(patient_id: str, legal_reason: str | None, yes: bool) -> None:
    """Crypto-shred a patient: destroy the data key of their compartment. Irreversible."""
    if not yes:
        click.confirm(f"Destroy every record of Patient/{patient_id} for good?", abort=True)
    store = current_app.extensions["ehr.store"]
    try:
        report = key_service.shred(store, AccessContext.operator(), patient_id, legal_reason)
    except key_service.KeyActionError as exc:
        raise click.ClickException(str(exc)) from None
    if report.key_id is None:
        click.echo("the patient had no data key; nothing to destroy")
    else:
        click.echo(f"data key {report.key_id} destroyed; {report.index_rows_removed} index rows removed")
