"""A real gunicorn serving the test database on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


class Server:
    def __init__(self, base: str, log: Path) -> None:
        self.base = base
        self.log = log

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30, headers={"Content-Type": "application/fhir+json"})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_gunicorn(app_config: dict, log: Path, workers: int = 4, **extra_env: str) -> tuple[subprocess.Popen, Server]:
    """Start gunicorn in its own process group (so a test can kill master, workers and job runner)."""
    port = free_port()
    env = {**os.environ, **{k: str(v) for k, v in app_config.items() if k.startswith("EHR_")}, "EHR_ENV": "development", **extra_env}
    out = open(log, "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "wsgi:app"],
        cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
    )
    out.close()
    deadline = time.monotonic() + 90  # 4 workers import the app; a loaded 2-core machine needs more than 30 s
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc, Server(f"http://127.0.0.1:{port}", log)
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("gunicorn did not start:\n" + log.read_text())
        time.sleep(0.1)


def stop_gunicorn(proc: subprocess.Popen, kill: bool = False) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
    except ProcessLookupError:
        return
    proc.wait(timeout=30)


@pytest.fixture(scope="session")
def gunicorn(app, app_config, tmp_path_factory) -> Iterator[Server]:
    # No job runner here: in-process export tests run jobs themselves.
    proc, server = start_gunicorn(app_config, tmp_path_factory.mktemp("gunicorn") / "gunicorn.log", EHR_JOB_RUNNER="0")
    try:
        yield server
    finally:
        stop_gunicorn(proc)
