"""`flask ehr demo`: load synthetic Vietnamese patients through the normal service layer, and in
development print demo logins for the clinic and the health book.

The logins are kept in `<instance>/demo-logins.txt` (mode 0600, development only) so that every
later `flask ehr demo --if-empty` (each `python3 dev.py serve`) prints them again; they are made
anew when that file or any demo account is missing (the previous demo passwords then stop working).
"""

from __future__ import annotations

import os
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from ehr.services import catalogue
from ehr.services import demo as demo_service
from ehr.services.context import AccessContext
from ehr.store.runtime import Store

LOGINS_FILE = "demo-logins.txt"
_ROLE_NAMES = {"receptionist": "Lễ tân", "nurse": "Điều dưỡng", "doctor": "Bác sĩ", "admin": "Quản trị", "patient": "Bệnh nhân"}


def format_logins(logins: list[demo_service.DemoLogin], path: Path) -> str:
    """The lines printed (and saved): one per login, `<role>  login: <name>  password: <pw>[  totp: <secret>]`."""
    lines = [f"demo logins (development only; saved in {path}, mode 0600):"]
    for door, title, url in (("clinic", f"clinic workspace ({demo_service.DEMO_FACILITY_NAME})", "/clinic/"),
                             ("healthbook", "health book (sổ sức khỏe điện tử; log in with the CCCD)", "/healthbook/")):
        lines.append(f"  {title}: {url}")
        for item in (x for x in logins if x.door == door):
            line = f"    {item.role:<13} login: {item.login:<15} password: {item.password}"
            if item.totp_secret:
                line += f"  totp: {item.totp_secret}  (code: python3 dev.py totp {item.totp_secret})"
            lines.append(f"{line}  # {_ROLE_NAMES[item.role]}")
    return "\n".join(lines)


def _save(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
    os.replace(tmp, path)


def _logins(store: Store, seed: int) -> None:
    path = Path(current_app.instance_path) / LOGINS_FILE
    if current_app.config.get("EHR_ENV") != "development":
        click.echo("demo: no demo logins outside development (EHR_ENV=production)")
        return
    if path.exists() and demo_service.logins_present(store):
        click.echo(path.read_text(encoding="utf-8").rstrip("\n"))
        return
    made = demo_service.demo_logins(store, AccessContext.operator("demo"), current_app.extensions["ehr.signing"],
                                    env=current_app.config["EHR_ENV"], seed=seed)
    text = format_logins(made, path)
    _save(path, text)
    click.echo(text)


@click.command("demo")
@click.option("--patients", default=20, show_default=True, help="Number of synthetic patients.")
@click.option("--seed", default=1, show_default=True, help="Generator seed (same seed, same data).")
@click.option("--if-empty", is_flag=True, help="Load no patients when the database already holds patients.")
@click.option("--no-logins", is_flag=True, help="Do not create or print the demo logins.")
@with_appcontext
def demo(patients: int, seed: int, if_empty: bool, no_logins: bool) -> None:
    """Load synthetic patients with visits (demo data; never real people); in development, demo
    logins for the clinic (one account per role) and the health book (one patient)."""
    store = current_app.extensions["ehr.store"]
    if if_empty and demo_service.has_patients(store):
        click.echo("demo: the database already holds patients; nothing loaded")
    else:
        with click.progressbar(length=patients, label="Loading synthetic patients") as bar:
            report = demo_service.load(store, AccessContext.operator("demo"), patients, seed, progress=bar.update)
        click.echo(f"demo: {report.patients} patients, {report.resources} resources loaded (seed {seed})")
    # The sample catalogues (drugs, services, lab tests) also for a database loaded before they
    # existed: importing the same lists again changes nothing.
    catalogue.load_samples(store)
    if not no_logins:
        _logins(store, seed)
