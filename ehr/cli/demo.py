"""`flask ehr demo`: load synthetic Vietnamese patients through the normal service layer."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from ehr.services import demo as demo_service
from ehr.services.context import AccessContext


@click.command("demo")
@click.option("--patients", default=20, show_default=True, help="Number of synthetic patients.")
@click.option("--seed", default=1, show_default=True, help="Generator seed (same seed, same data).")
@click.option("--if-empty", is_flag=True, help="Do nothing when the database already holds patients.")
@with_appcontext
def demo(patients: int, seed: int, if_empty: bool) -> None:
    """Load synthetic patients with visits (demo data; never real people)."""
    store = current_app.extensions["ehr.store"]
    if if_empty and demo_service.has_patients(store):
        click.echo("demo: the database already holds patients; nothing loaded")
        return
    with click.progressbar(length=patients, label="Loading synthetic patients") as bar:
        report = demo_service.load(store, AccessContext.operator("demo"), patients, seed, progress=bar.update)
    click.echo(f"demo: {report.patients} patients, {report.resources} resources loaded (seed {seed})")
