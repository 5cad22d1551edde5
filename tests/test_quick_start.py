"""The README's quick start, as `python3 dev.py serve` runs it, into a fresh instance folder:
development keys, migrations, conformance artifacts, demo data; then the printed demo logins
open a signed-in clinic page and a signed-in health book page of a real gunicorn over HTTP."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pyotp
import pytest

ROOT = Path(__file__).resolve().parents[1]
LOGIN = re.compile(r"^\s+(receptionist|nurse|doctor|admin|patient)\s+login: (\S+)\s+password: (\S+)(?:\s+totp: ([A-Z2-7]+))?", re.M)
TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')

pytestmark = pytest.mark.slow


def _env(instance: Path, **extra: str) -> dict[str, str]:
    # Only what a newcomer's shell has: no test database, no test keys.
    env = {k: v for k, v in os.environ.items() if not k.startswith("EHR_")}
    return {**env, "EHR_INSTANCE_PATH": str(instance), "EHR_ENV": "development", **extra}


def _run(instance: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=_env(instance), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _flask(instance: Path, *args: str) -> str:
    return _run(instance, "-m", "flask", "--app", "wsgi", *args)


@pytest.fixture(scope="module")
def quick_start(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    instance = tmp_path_factory.mktemp("quick-start") / "instance"
    _run(instance, "-m", "ehr.cli.devkeys", str(instance))
    _flask(instance, "db", "upgrade")
    _flask(instance, "ehr", "conformance", "sync")
    return instance, _flask(instance, "ehr", "demo", "--if-empty", "--patients", "2")


@pytest.fixture(scope="module")
def server(quick_start: tuple[Path, str]) -> Iterator[str]:
    instance, _ = quick_start
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = instance.parent / "gunicorn.log"
    with log.open("ab") as out:
        # Plain HTTP from a test client: the non-`__Host-` cookie of EHR_SESSION_COOKIE_SECURE=false.
        env = _env(instance, EHR_BIND=f"127.0.0.1:{port}", EHR_WORKERS="1", EHR_JOB_RUNNER="0", EHR_SESSION_COOKIE_SECURE="false")
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise RuntimeError("gunicorn did not start:\n" + log.read_text())
        time.sleep(0.2)
    try:
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _logins(output: str) -> dict[str, tuple[str, str, str | None]]:
    return {role: (login, password, secret or None) for role, login, password, secret in LOGIN.findall(output)}


def _sign_in(base: str, login: str, password: str) -> tuple[httpx.Client, httpx.Response]:
    web = httpx.Client(base_url=base, timeout=30)
    token = TOKEN.search(web.get("/auth/login").text).group(1)  # type: ignore[union-attr]
    return web, web.post("/auth/login", data={"login": login, "password": password, "next": "", "csrf_token": token})


def test_the_demo_prints_a_login_per_role_and_prints_them_again(quick_start: tuple[Path, str]) -> None:
    instance, output = quick_start
    logins = _logins(output)
    assert set(logins) == {"receptionist", "nurse", "doctor", "admin", "patient"}, output
    assert logins["doctor"][2] and logins["admin"][2] and not logins["nurse"][2]  # TOTP where the role needs it
    assert re.fullmatch(r"\d{12}", logins["patient"][0])  # the patient signs in with the CCCD
    saved = instance / "demo-logins.txt"
    assert saved.stat().st_mode & 0o777 == 0o600
    again = _flask(instance, "ehr", "demo", "--if-empty", "--patients", "2")  # the next `dev.py serve`
    assert "nothing loaded" in again and _logins(again) == logins


def test_the_printed_logins_open_the_clinic_and_the_health_book(quick_start: tuple[Path, str], server: str) -> None:
    logins = _logins(quick_start[1])
    home = httpx.get(f"{server}/").text
    assert 'href="/clinic/"' in home and 'href="/healthbook/"' in home and 'href="/fhir/metadata"' in home

    desk, response = _sign_in(server, *logins["receptionist"][:2])
    assert response.status_code == 302
    page = desk.get("/clinic/")
    header = page.text.split("</header>")[0]
    assert page.status_code == 200 and "Lễ tân" in header and "Phòng khám Đa khoa Demo" in header

    login, password, secret = logins["doctor"]
    doctor, response = _sign_in(server, login, password)
    assert response.headers["Location"] == "/auth/totp"
    token = TOKEN.search(doctor.get("/auth/totp").text).group(1)  # type: ignore[union-attr]
    assert doctor.post("/auth/totp", data={"code": pyotp.TOTP(secret).now(), "csrf_token": token}).status_code == 302
    assert "Bác sĩ" in doctor.get("/clinic/").text.split("</header>")[0]

    patient, response = _sign_in(server, *logins["patient"][:2])
    assert response.status_code == 302
    book = patient.get("/healthbook/", follow_redirects=True)
    assert book.status_code == 200 and "Bệnh nhân" in book.text.split("</header>")[0]
    visits = patient.get(book.url.path + "visits")
    assert visits.status_code == 200 and "Khám sức khỏe định kỳ" in visits.text  # the demo doctor's signed visit
