"""`flask ehr signing ...`: facility signing keys and signature verification."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from ehr.crypto.signing_keys import FacilityKeys
from ehr.fhir.outcomes import FhirError
from ehr.services import signing
from ehr.services.context import AccessContext


def _keys() -> FacilityKeys:
    return current_app.extensions["ehr.signing"]  # type: ignore[no-any-return]


@click.group("signing")
def signing_group() -> None:
    """Facility signing keys (files outside the database) and signature checks."""


@signing_group.command("create-key")
@click.option("--organization", required=True, help="Organization id of the facility.")
@with_appcontext
def create_key(organization: str) -> None:
    """Make the facility's ES256 key (the previous one stays usable for verification)."""
    key = _keys().create(organization)
    click.echo(f"key {key.thumbprint()} for Organization/{organization} in {_keys().directory}")


@signing_group.command("verify")
@click.argument("provenance_id")
@with_appcontext
def verify(provenance_id: str) -> None:
    """Check a signature Provenance: the JWS, and every signed version's digest. Exit 1 if broken."""
    store = current_app.extensions["ehr.store"]
    try:
        report = signing.verify(store, AccessContext.operator("signing-verify"), _keys(), provenance_id)
    except FhirError as exc:
        raise click.ClickException(exc.issues[0].diagnostics) from None
    click.echo(f"signed by {report.signer} for Organization/{report.organization} at {report.when}")
    for target in report.targets:
        click.echo(f"  {target}")
    for problem in report.problems:
        click.echo(f"PROBLEM: {problem}")
    if not report.ok:
        click.get_current_context().exit(1)
    click.echo("ok")
