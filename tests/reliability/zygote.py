"""A gunicorn launcher with warm imports, so that a crash trial restarts the server in well under a
second instead of ~15 s.

Why: every gunicorn worker builds the app with `create_app()`, and the first build in a process
imports the FHIR models (~3 s of CPU); four workers starting at once on this 2-core machine need
~15 s. Here one process imports everything once (it builds and throws away an app on a scratch
SQLite file: it never opens the database under test), then forks one child per server start. The
child becomes the leader of a new session and process group and runs gunicorn's own entry point
with the project's `gunicorn.conf.py`, exactly as `python -m gunicorn -c gunicorn.conf.py ...
wsgi:app` would: no `--preload`, each worker imports `wsgi` and builds its own app from the
environment it was given. Only the Python import cache is shared, not any app, engine or connection.

The launcher is a child subreaper (prctl), so workers orphaned by a SIGKILL of their master are
reaped here and never linger as zombies.

Protocol (one JSON object per line on stdin, one reply per line on stdout):
  {"cmd": "start", "argv": [...], "env": {...}, "log": "path"}  -> {"pid": <master pid = pgid>}
  {"cmd": "wait", "pid": <pid>, "timeout": <s>}                  -> {"status": <int or null>}
  {"cmd": "quit"}                                                 -> exits
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PR_SET_CHILD_SUBREAPER = 36
_exited: dict[int, int] = {}


def _reap(*_: object) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _exited[pid] = status


def warm_up() -> None:
    """Import everything a worker imports, by building one app on a scratch database."""
    import base64
    import secrets

    sys.path.insert(0, str(ROOT))
    from ehr import create_app
    from ehr.crypto.keyring import new_keyring, write_keyfile

    scratch = Path(tempfile.mkdtemp(prefix="ehr-zygote-"))
    write_keyfile(scratch / "master.key", new_keyring(development=False))
    app = create_app({
        "TESTING": True,
        "EHR_INSTANCE_PATH": str(scratch),
        "EHR_DATABASE_URL": f"sqlite:///{scratch / 'warm.sqlite3'}",
        "EHR_MASTER_KEY_FILE": str(scratch / "master.key"),
        "EHR_BLIND_INDEX_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "EHR_AUDIT_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "EHR_SECRET_KEY": secrets.token_urlsafe(48),
    })
    app.extensions["ehr.store"].engine.dispose()
    import gunicorn.app.wsgiapp  # noqa: F401
    import psycopg  # noqa: F401
    import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401

    for path in sorted(scratch.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    scratch.rmdir()
    sys.path.remove(str(ROOT))


def start(argv: list[str], env: dict[str, str], log: str) -> int:
    pid = os.fork()
    if pid:
        return pid
    # The child: a new session and process group (pgid = pid), stdio to the log, then gunicorn.
    try:
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(null)
        os.close(out)
        os.chdir(ROOT)
        os.environ.clear()
        os.environ.update(env)
        sys.path.insert(0, str(ROOT))
        sys.argv = argv
        from gunicorn.app.wsgiapp import run

        run()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        code = 1
    os._exit(code)


def wait(pid: int, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while True:
        _reap()
        if pid in _exited:
            return _exited.pop(pid)
        if time.monotonic() > deadline:
            return None
        time.sleep(0.01)


def main() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    warm_up()
    signal.signal(signal.SIGCHLD, _reap)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["cmd"] == "start":
            reply: dict[str, object] = {"pid": start(msg["argv"], msg["env"], msg["log"])}
        elif msg["cmd"] == "wait":
            reply = {"status": wait(int(msg["pid"]), float(msg.get("timeout", 30)))}
        elif msg["cmd"] == "quit":
            break
        else:
            reply = {"error": "unknown command"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
