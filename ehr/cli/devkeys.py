"""Generate development keys in the instance folder: `python -m ehr.cli.devkeys [INSTANCE_DIR]`.

Runs without the app (the app refuses to start without keys). Files are created with mode 0600 and
marked as development keys, which production mode refuses.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
from pathlib import Path

from ehr.crypto.keyring import new_keyring, write_keyfile
from ehr.settings import write_secret_file

BANNER = """
************************************************************************************
*  DEVELOPMENT KEYS created in {path}
*  They protect the local demo database only. Never use them for real patient data:
*  production refuses them (EHR_ENV=production). See README "Production".
************************************************************************************"""


def ensure_dev_keys(instance: Path) -> list[Path]:
    """Create any missing development key file; return the ones created."""
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)
    created = []
    master = instance / "master.key"
    if not master.exists():
        write_keyfile(master, new_keyring(development=True))
        created.append(master)
    for name in ("blind-index.key", "secret.key", "audit.key"):
        path = instance / name
        if not path.exists():
            write_secret_file(path, base64.b64encode(secrets.token_bytes(32)).decode(), development=True)
            created.append(path)
    return created


def main(argv: list[str]) -> int:
    instance = Path(argv[1] if len(argv) > 1 else os.environ.get("EHR_INSTANCE_PATH", "instance")).resolve()
    created = ensure_dev_keys(instance)
    if created:
        print(BANNER.format(path=instance), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
