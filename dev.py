#!/usr/bin/env python3
"""Quick start for a fresh machine with Python 3.11+ (no other prerequisite).

    python3 dev.py serve   install, create development keys, migrate, load demo data on first start,
                           serve with gunicorn on http://127.0.0.1:8000
    python3 dev.py test    install the test dependencies and run the whole test suite
                           (SQLite by default; EHR_TEST_DATABASE_URL=postgresql://... for PostgreSQL)
    python3 dev.py totp SECRET
                           the current 6-digit code of a TOTP secret (the demo doctor's and admin's,
                           printed by `serve`), instead of an authenticator app

Everything goes into ./.venv and ./instance (database and development keys, both git-ignored).
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


def run(*args: str | Path, env: dict[str, str] | None = None) -> None:
    subprocess.run([str(a) for a in args], cwd=ROOT, env=env, check=True)


def ensure_venv(extras: str = "") -> None:
    if sys.version_info < (3, 11):
        sys.exit("Python 3.11 or newer is required")
    if not PY.exists():
        print("creating virtual environment in .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    target = f".[{extras}]" if extras else "."
    run(PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", target)


def serve() -> None:
    ensure_venv()
    env = dict(os.environ)
    env.setdefault("EHR_INSTANCE_PATH", str(ROOT / "instance"))
    run(PY, "-m", "ehr.cli.devkeys", env["EHR_INSTANCE_PATH"], env=env)
    flask = [PY, "-m", "flask", "--app", "wsgi"]
    run(*flask, "db", "upgrade", env=env)
    run(*flask, "ehr", "conformance", "sync", env=env)
    # Loads the demo patients on the first start; prints the demo logins (clinic, health book) every time.
    run(*flask, "ehr", "demo", "--if-empty", env=env)
    print("serving on http://127.0.0.1:8000  (clinic at /clinic/, health book at /healthbook/, FHIR API at /fhir; Ctrl-C stops)",
          flush=True)
    os.chdir(ROOT)
    os.execve(str(PY), [str(PY), "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], env)


def test(pytest_args: list[str]) -> None:
    ensure_venv("test")
    os.chdir(ROOT)
    os.execv(str(PY), [str(PY), "-m", "pytest", *pytest_args])


def totp_code(secret: str) -> None:
    if not PY.exists():  # serve installed everything already; no reinstall just for a code
        ensure_venv()
    run(PY, "-c", "import sys, pyotp; print(pyotp.TOTP(sys.argv[1]).now())", secret)


def main(argv: list[str]) -> None:
    command = argv[1] if len(argv) > 1 else ""
    if command == "serve":
        serve()
    elif command == "test":
        test(argv[2:])
    elif command == "totp" and len(argv) == 3:
        totp_code(argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
