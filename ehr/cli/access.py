"""`flask ehr facility|client|token|care ...`: operators register facilities and hospital systems,
mint short-lived tokens for their own checks, and record care relationships. Every command is
audited under the operator's name."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from ehr.fhir.outcomes import FhirError
from ehr.services import care, clients, resources
from ehr.services.context import AccessContext


def _operator() -> AccessContext:
    return AccessContext.operator(getpass.getuser())


def _fail(exc: Exception) -> click.ClickException:
    if isinstance(exc, FhirError):
        return click.ClickException("; ".join(i.diagnostics for i in exc.issues))
    return click.ClickException(str(exc))


@click.group("facility")
def facility() -> None:
    """Health facilities (FHIR Organizations) that staff and systems act for."""


@facility.command("create")
@click.option("--name", required=True, help="The facility's name, e.g. 'Phòng khám Đa khoa Hòa Bình'.")
@click.option("--code", default=None, help="Facility code (mã CSKCB, 5 digits).")
@click.option("--id", "logical_id", default=None, help="Organization id to use (default: a new UUID).")
@with_appcontext
def facility_create(name: str, code: str | None, logical_id: str | None) -> None:
    """Create a facility; prints its Organization id."""
    store = current_app.extensions["ehr.store"]
    doc: dict[str, object] = {"resourceType": "Organization", "active": True, "name": name,
                              "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov"}]}]}
    if code:
        doc["identifier"] = [{"system": store.systems.facility, "value": code}]
    try:
        if logical_id:
            written = resources.update(store, _operator(), "Organization", logical_id, {**doc, "id": logical_id})
        else:
            written = resources.create(store, _operator(), doc)
    except FhirError as exc:
        raise _fail(exc) from None
    click.echo(written.version.logical_id)


@click.group("client")
def client() -> None:
    """Hospital systems (SMART Backend Services clients)."""


@client.command("register")
@click.option("--client-id", required=True)
@click.option("--organization", required=True, help="Organization id of the facility the system acts for.")
@click.option("--jwks", "jwks_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path), help="JSON file with the client's public keys.")
@click.option("--scope", "scopes", multiple=True, required=True, help="A SMART v2 system scope it may ask for (repeatable), e.g. system/*.rs")
@click.option("--purpose", default="TREAT", show_default=True, help="Purpose of use of its requests (v3 ActReason: TREAT, HPAYMT, HRESCH...).")
@with_appcontext
def client_register(client_id: str, organization: str, jwks_file: Path, scopes: tuple[str, ...], purpose: str) -> None:
    store = current_app.extensions["ehr.store"]
    try:
        jwks = json.loads(jwks_file.read_text())
        clients.register(store, _operator(), client_id, organization, jwks, list(scopes), purpose)
    except (clients.ClientError, ValueError) as exc:
        raise _fail(exc) from None
    click.echo(f"registered {client_id} for Organization/{organization}")


@client.command("disable")
@click.argument("client_id")
@with_appcontext
def client_disable(client_id: str) -> None:
    """Disable a client: its tokens stop working on their next request."""
    if not clients.set_active(current_app.extensions["ehr.store"], _operator(), client_id, False):
        raise click.ClickException("no such client")
    click.echo(f"disabled {client_id}")


@client.command("enable")
@click.argument("client_id")
@with_appcontext
def client_enable(client_id: str) -> None:
    if not clients.set_active(current_app.extensions["ehr.store"], _operator(), client_id, True):
        raise click.ClickException("no such client")
    click.echo(f"enabled {client_id}")


@click.group("token")
def token() -> None:
    """Access tokens for operators' own checks and scripts."""


@token.command("mint")
@click.option("--client-id", required=True)
@click.option("--scope", "scopes", multiple=True, required=True, help="Scopes (within the client's registration).")
@click.option("--seconds", default=clients.TOKEN_SECONDS, show_default=True, help="Lifetime, at most 300 s.")
@with_appcontext
def token_mint(client_id: str, scopes: tuple[str, ...], seconds: int) -> None:
    """Print an access token of a registered client (audited like any other token)."""
    try:
        issued = clients.mint(current_app.extensions["ehr.store"], _operator(), client_id, list(scopes), seconds)
    except clients.ClientError as exc:
        raise _fail(exc) from None
    click.echo(issued.access_token)


@click.group("care")
def care_group() -> None:
    """Care relationships between facilities and patients."""


@care_group.command("add")
@click.option("--organization", required=True)
@click.option("--patient", "patient_id", required=True)
@with_appcontext
def care_add(organization: str, patient_id: str) -> None:
    try:
        care.record(current_app.extensions["ehr.store"], _operator(), patient_id, organization)
    except FhirError as exc:
        raise _fail(exc) from None
    click.echo(f"Patient/{patient_id} is in the care of Organization/{organization}")
