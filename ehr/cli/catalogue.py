"""`flask ehr catalogue ...`: load the drug, service and lab-test lists from .csv/.xlsx files."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from ehr.services import auditing
from ehr.services import catalogue as catalogue_service
from ehr.services.context import AccessContext


@click.group("catalogue")
def catalogue() -> None:
    """Catalogues (code systems as data): drugs, services, labs."""


@catalogue.command("import")
@click.argument("kind", type=click.Choice(catalogue_service.KINDS))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--label", default=None, help="Version label (Coding.version); default: import date and content hash.")
@with_appcontext
def import_(kind: str, file: Path, label: str | None) -> None:
    """Import FILE (.csv or .xlsx) as a new version of KIND; the same content again changes nothing.

    Rows that fail their checks are listed with their row number and reason; the others are
    imported. Exit status 1 if any row was rejected or the file could not be read, else 0."""
    store = current_app.extensions["ehr.store"]
    total = catalogue_service.count_rows(file)
    try:
        with click.progressbar(length=max(total, 1), label=f"Reading {file.name}", file=sys.stderr) as bar:
            report = catalogue_service.import_file(store, kind, file, bar.update, label=label)
    except catalogue_service.CatalogueError as exc:
        auditing.event(store, AccessContext.operator("catalogue"), "catalogue.import", "failure",
                       detail={"kind": kind, "file": file.name, "error": str(exc)})
        raise click.ClickException(str(exc)) from None
    auditing.event(store, AccessContext.operator("catalogue"), "catalogue.import", "success" if report.ok else "partial",
                   detail={"kind": kind, "file": file.name, "version": report.version, "created": report.created,
                           "accepted": report.accepted, "rejected": len(report.rejected)})
    click.echo(report.summary())
    if not report.ok:
        raise SystemExit(1)


@catalogue.command("list")
@click.argument("kind", required=False, type=click.Choice(catalogue_service.KINDS))
@with_appcontext
def list_(kind: str | None) -> None:
    """The imported versions (newest first per kind; * marks the active one)."""
    store = current_app.extensions["ehr.store"]
    found = catalogue_service.versions(store, kind)
    if not found:
        click.echo("no catalogue imported yet")
    for v in found:
        when = datetime.fromtimestamp(v.imported_at / 1e6, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        click.echo(f"{'*' if v.active else ' '} {v.kind:<8} {v.label:<24} {v.row_count:>7} rows  {when}  {v.source}  sha256:{v.sha256[:12]}")
