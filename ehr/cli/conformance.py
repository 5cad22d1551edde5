"""`flask ehr conformance sync`: publish fhir/ artifacts (NamingSystems, OperationDefinitions,
SearchParameters) as resources of this server."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from ehr.services import conformance as service


@click.group("conformance")
def conformance() -> None:
    """Conformance artifacts."""


@conformance.command("sync")
@with_appcontext
def sync() -> None:
    """Write the artifacts under fhir/ into the store (idempotent)."""
    written, unchanged = service.sync(current_app.extensions["ehr.store"])
    click.echo(f"conformance: {written} written, {unchanged} unchanged")
