"""`flask ehr audit ...`: seal the audit trail's hash chain, checkpoint its head, verify it."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.engine import Engine

from ehr.store import audit as trail


def checkpoint_file() -> Path:
    """EHR_AUDIT_CHECKPOINT_FILE, default `<instance>/audit-checkpoints.log` (keep a copy off the host)."""
    return trail.trail_files(current_app.config, current_app.instance_path)[0]


def head_file() -> Path:
    """EHR_AUDIT_HEAD_FILE, default the checkpoint file's path plus `.head`: the head of every seal."""
    return trail.trail_files(current_app.config, current_app.instance_path)[1]


def _engine_and_key() -> tuple[Engine, bytes]:
    return current_app.extensions["ehr.store"].engine, current_app.extensions["ehr.secrets"].audit_key


@click.group("audit")
def audit() -> None:
    """The audit trail's keyed hash chain: seal, checkpoint, verify."""


@audit.command("seal")
@with_appcontext
def seal() -> None:
    """Seal the rows written since the last seal, then append the head to the checkpoint file."""
    engine, key = _engine_and_key()
    path, head = checkpoint_file(), head_file()
    try:
        sealed = trail.seal(engine, key, anchor=trail.anchor_of(head, path), head_file=head)
    except (trail.ChainBroken, trail.SealDelayed) as exc:
        raise click.ClickException(str(exc)) from None
    point = trail.checkpoint(engine, path)
    click.echo(f"sealed {sealed} rows")
    click.echo(f"head {point[0]} {point[1]} (checkpoint in {path})" if point else "the audit trail is empty")


@audit.command("checkpoint")
@with_appcontext
def checkpoint() -> None:
    """Append the chain head to the checkpoint file (nothing new when the head has not moved)."""
    engine, _ = _engine_and_key()
    path = checkpoint_file()
    point = trail.checkpoint(engine, path)
    click.echo(f"head {point[0]} {point[1]} (checkpoint in {path})" if point else "nothing is sealed yet")


@audit.command("verify")
@click.option(
    "--checkpoints",
    "checkpoints",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Checkpoint file to compare (default: EHR_AUDIT_CHECKPOINT_FILE or <instance>/audit-checkpoints.log).",
)
@click.option(
    "--head",
    "head",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Head file to compare (default: EHR_AUDIT_HEAD_FILE or the checkpoint file's path plus .head).",
)
@with_appcontext
def verify(checkpoints: Path | None, head: Path | None) -> None:
    """Recompute the chain, compare the checkpoints and the sealed head, check the tables the trail
    vouches for (audit subjects, break-glass grants, care relationships, Consent history); exit 1
    on any problem."""
    engine, key = _engine_and_key()
    path, head = checkpoints or checkpoint_file(), head or head_file()
    if not path.exists():
        click.echo(f"note: no checkpoint file at {path}: a truncation of the newest rows cannot be detected", err=True)
    if not head.exists():
        click.echo(f"note: no head file at {head}: rows sealed after the last checkpoint can be cut unseen", err=True)
    report = trail.verify(engine, key, path, head_file=head, keys=current_app.extensions["ehr.store"].keys)
    click.echo(f"rows {report.rows}, sealed {report.sealed}, unsealed {report.unsealed}")
    recorded = "none" if report.recorded_head is None else f"row {report.recorded_head}"
    click.echo(f"chain head {report.head}, checkpoints compared {report.checkpoints}, head file {recorded}")
    if report.covered:
        click.echo("cross-checked: " + ", ".join(f"{name} {n}" for name, n in report.covered.items()))
    for problem in report.problems:
        click.echo(f"PROBLEM: {problem}")
    if not report.ok:
        click.get_current_context().exit(1)
    click.echo("ok")
