"""`flask ehr backup FILE` and `flask ehr restore FILE`: encrypted online backup, verified restore."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from ehr.cli.audit import checkpoint_file, head_file
from ehr.services import backup as backup_service
from ehr.services.context import AccessContext
from ehr.store import audit as trail


def _shred_log_default() -> Path:
    path = backup_service.shred_log_path(current_app.extensions["ehr.store"])
    assert path is not None  # an app context is active
    return path


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--chunk-kib", default=1024, show_default=True, help="Plaintext KiB per encrypted chunk (bounds memory).")
@with_appcontext
def backup(file: Path, chunk_kib: int) -> None:
    """Write an encrypted, checksummed backup of the database to FILE while the service runs."""
    store = current_app.extensions["ehr.store"]
    try:
        report = backup_service.backup(store, AccessContext.operator(), file, chunk_bytes=chunk_kib * 1024)
    except backup_service.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    for table in report.tables:
        click.echo(f"  {table.name:<20} {table.rows:>10} rows  sha256 {table.sha256[:16]}...")
    click.echo(f"backup {report.backup_id} of schema revision {report.schema_revision}, created {report.created_at}")
    click.echo(f"{report.rows} rows, {report.file_bytes} bytes in {report.seconds:.1f} s -> {report.path}")
    click.echo(f"sha256 {report.file_sha256}  (the whole file, as sha256sum prints it)")
    click.echo(f"left out (ephemeral): {', '.join(sorted(backup_service.EXCLUDED))}")


@click.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Only verify the file (needs the master key); write nothing.")
@click.option(
    "--shred-log",
    "shred_log",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Shred log whose erasures are re-applied (default: EHR_SHRED_LOG or <instance>/shred.log).",
)
@click.option("--no-shred-log", is_flag=True, help="Restore although no shred log exists (none was ever written, or it is lost).")
@click.option("--batch", default=1000, show_default=True, help="Rows per insert transaction.")
@with_appcontext
def restore(file: Path, check: bool, shred_log: Path | None, no_shred_log: bool, batch: int) -> None:
    """Verify FILE completely, then restore it into this EMPTY, migrated database."""
    store = current_app.extensions["ehr.store"]
    try:
        if check:
            manifest = backup_service.verify_file(store, file)
            _describe(manifest)
            click.echo("ok: the backup verifies (nothing written)")
            return
        log = shred_log or _shred_log_default()
        if no_shred_log:
            log = None
        elif not log.exists():
            raise click.ClickException(
                f"no shred log at {log}: without it, patients erased after this backup was taken would come back. "
                "Copy the shred log from its off-host copy (or give --shred-log FILE); if no shred was ever made, "
                "or the log is lost, say so with --no-shred-log"
            )
        report = backup_service.restore(store, AccessContext.operator(), file, shred_log=log, batch=batch)
    except backup_service.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    _describe(report.manifest)
    click.echo(f"restored {report.rows} rows in {report.seconds:.1f} s")
    if report.shred_log is None:
        click.echo("shred log: none (--no-shred-log): erasures made after this backup are NOT re-applied", err=True)
    else:
        click.echo(
            f"shred log {report.shred_log}: {report.shred_entries} erased patient(s) listed; re-applied {report.shreds_applied} "
            f"shred(s) whose data key this backup still held ({report.index_rows_dropped} index rows dropped)"
        )
    for note in report.notes:
        click.echo(f"note: {note}")
    engine, key = store.engine, current_app.extensions["ehr.secrets"].audit_key
    note = backup_service.restart_checkpoints(engine, checkpoint_file(), head_file())
    if note:
        click.echo(f"note: {note}")
    verification = trail.verify(engine, key, None, keys=store.keys)
    click.echo(f"audit chain: {verification.sealed} sealed rows, {verification.unsealed} unsealed")
    for problem in verification.problems:
        click.echo(f"PROBLEM: {problem}")
    if not verification.ok:
        raise click.ClickException("the data is restored, but its audit chain does not verify")


def _describe(manifest: backup_service.Manifest) -> None:
    click.echo(
        f"backup {manifest.backup_id} made {manifest.created_at} on {manifest.source_dialect}, schema revision "
        f"{manifest.schema_revision}: {len(manifest.tables)} tables, {manifest.rows} rows"
    )
    if manifest.file_sha256:
        click.echo(f"sha256 {manifest.file_sha256}")
