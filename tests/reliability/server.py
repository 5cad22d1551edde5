"""Start, kill -9 and stop gunicorn (master + 4 workers) for the reliability tests.

Servers are forked from a warm launcher (`zygote.py`, see there why); each server is the leader of
its own process group, so `os.killpg(pgid, SIGKILL)` takes down the master and every worker (and the
job runner when it runs) and nothing else: never the PostgreSQL server, never the test process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[2]
ZYGOTE = Path(__file__).resolve().parent / "zygote.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(app_config: dict[str, Any], **extra: str) -> dict[str, str]:
    """The environment of a server on the test database: the test's EHR_* settings (as
    tests/e2e/conftest.py passes them), development mode, plus extras."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EHR_") and not k.startswith("PYTEST")}
    env.update({k: str(v) for k, v in app_config.items() if k.startswith("EHR_")})
    env["EHR_ENV"] = "development"
    env["EHR_JOB_RUNNER"] = "0"
    env.update({k: str(v) for k, v in extra.items()})
    return env


@dataclass
class Server:
    pgid: int
    port: int
    log: Path
    launcher: "Launcher"
    alive: bool = True
    pids: set[int] = field(default_factory=set)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=kw.pop("timeout", 30), **kw)

    def group_members(self) -> list[psutil.Process]:
        out = []
        for proc in psutil.process_iter(["pid", "status"]):
            try:
                if os.getpgid(proc.pid) == self.pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                    out.append(proc)
            except (ProcessLookupError, psutil.NoSuchProcess):
                continue
        return out

    def kill9(self) -> int:
        """SIGKILL the whole process group (master, workers, runner); return how many died."""
        members = self.group_members()
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.launcher.wait(self.pgid, 30)
        deadline = time.monotonic() + 10
        while self.group_members() and time.monotonic() < deadline:
            time.sleep(0.01)
        left = self.group_members()
        assert not left, f"processes survived SIGKILL of group {self.pgid}: {left}"
        self.alive = False
        return len(members)

    def stop(self, grace: float = 10.0) -> None:
        """Graceful stop (SIGTERM to the master), SIGKILL of the group after `grace` seconds."""
        if not self.alive:
            return
        try:
            os.kill(self.pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        if self.launcher.wait(self.pgid, grace) is None:
            self.kill9()
        else:
            try:
                os.killpg(self.pgid, signal.SIGKILL)  # stragglers, if any
            except ProcessLookupError:
                pass
        self.alive = False


class Launcher:
    """The test side of zygote.py."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.servers: list[Server] = []
        with open(log, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(ZYGOTE)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1,
            )
        ready = self._read()
        assert ready.get("ready"), ready

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the gunicorn launcher exited")
        return json.loads(line)  # type: ignore[no-any-return]

    def _call(self, **msg: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def wait(self, pid: int, timeout: float) -> int | None:
        return self._call(cmd="wait", pid=pid, timeout=timeout)["status"]  # type: ignore[no-any-return]

    def start(self, env: dict[str, str], log: Path, workers: int = 4, timeout: float = 60) -> Server:
        """Start a server on a free port; retried on another port if the port was taken meanwhile
        (other test sessions on this machine pick free ports too)."""
        for _ in range(3):
            server = self._start_once(env, log, workers, timeout)
            if server is not None:
                return server
        raise RuntimeError("gunicorn did not start:\n" + log.read_text(errors="replace")[-4000:])

    def _start_once(self, env: dict[str, str], log: Path, workers: int, timeout: float) -> Server | None:
        port = free_port()
        argv = ["gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "wsgi:app"]
        pid = int(self._call(cmd="start", argv=argv, env=env, log=str(log))["pid"])
        server = Server(pid, port, log, self)
        self.servers.append(server)
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2) as http:
            while True:
                if not psutil.pid_exists(pid) or time.monotonic() > deadline:
                    server.kill9()
                    return None
                if self._listening(pid, port):  # our master holds the port: the answer is ours
                    try:
                        if http.get(f"{server.base}/healthz").status_code == 200:
                            return server
                    except httpx.HTTPError:
                        pass
                time.sleep(0.02)

    @staticmethod
    def _listening(pid: int, port: int) -> bool:
        try:
            conns = psutil.Process(pid).net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return False
        return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in conns)

    def close(self) -> None:
        for server in self.servers:  # a test that failed half-way may have left one running
            if server.alive:
                server.kill9()
        try:
            self._call(cmd="quit")
        except (BrokenPipeError, RuntimeError, ValueError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except BrokenPipeError:
                    pass
