"""`flask ehr index rebuild`: recompute the search index from the encrypted store."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from ehr.services import reindex
from ehr.services.context import AccessContext


@click.group("index")
def index() -> None:
    """The search index."""


@index.command("rebuild")
@click.option("--type", "resource_type", default=None, help="Only this resource type.")
@click.option("--batch", default=500, show_default=True)
@with_appcontext
def rebuild(resource_type: str | None, batch: int) -> None:
    """Re-derive every index row from the stored resources (after adding a search parameter)."""
    store = current_app.extensions["ehr.store"]
    total = reindex.count_live(store, resource_type)
    with click.progressbar(length=total, label="Re-indexing resources", show_pos=True) as bar:
        done = reindex.rebuild(store, AccessContext.operator("reindex"), resource_type, batch, progress=bar.update)
    click.echo(f"re-indexed {done} resources")
