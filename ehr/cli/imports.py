"""`flask ehr import PATH...`: load FHIR bundles and ndjson files, resumably."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from tqdm import tqdm

from ehr.services import imports
from ehr.services.context import AccessContext


@click.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--batch", default=500, show_default=True, help="Resources per committed batch (ndjson, batch bundles).")
@with_appcontext
def import_(paths: tuple[Path, ...], batch: int) -> None:
    """Import transaction/batch/collection Bundles (.json) and ndjson files (.ndjson); folders are walked."""
    files: list[Path] = []
    for path in paths:
        files += sorted(p for p in path.rglob("*") if p.suffix in (".json", ".ndjson")) if path.is_dir() else [path]
    store = current_app.extensions["ehr.store"]
    importer = imports.Importer(store, AccessContext.operator("import"), batch)
    total = sum(importer.count_units(f) for f in files)
    with tqdm(total=total, unit="entry", desc="Importing", disable=None) as bar:
        importer.progress = bar.update
        reports = importer.run(files)
    click.echo(imports.summary(reports))
    if any(r.rejected for r in reports):
        raise SystemExit(1)
