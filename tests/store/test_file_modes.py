"""Files the service writes are the owner's only: the SQLite database (and its -wal / -shm),
backups, new folders for them (0700)."""

from __future__ import annotations

import os
import stat

import pytest

from ehr import create_app
from ehr.store.engine import sqlite_file


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_sqlite_database_and_its_wal_files_are_0600(app, app_config, store):
    database = sqlite_file(app_config["EHR_DATABASE_URL"])
    if database is None:
        pytest.skip("the database under test is not SQLite")
    with store.engine.connect() as conn:  # WAL mode: -wal and -shm exist while a connection is open
        conn.exec_driver_sql("SELECT 1")
        files = [database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))]
        assert {str(f): _mode(f) for f in files} == {str(f): 0o600 for f in files}


def test_a_new_database_folder_is_0700_and_an_older_wider_file_is_narrowed(app_config, tmp_path):
    fresh = tmp_path / "new" / "ehr.sqlite3"
    create_app({**app_config, "EHR_INSTANCE_PATH": str(tmp_path), "EHR_DATABASE_URL": f"sqlite:///{fresh}"})
    assert (_mode(fresh.parent), _mode(fresh)) == (0o700, 0o600)
    old = tmp_path / "old.sqlite3"
    for path in (old, tmp_path / "old.sqlite3-wal"):
        path.touch(mode=0o644)
        os.chmod(path, 0o644)
    create_app({**app_config, "EHR_INSTANCE_PATH": str(tmp_path), "EHR_DATABASE_URL": f"sqlite:///{old}"})
    assert (_mode(old), _mode(tmp_path / "old.sqlite3-wal")) == (0o600, 0o600)


def test_backup_files_are_0600_in_a_new_folder_0700(app, tmp_path):
    file = tmp_path / "backups" / "ehr.backup"
    result = app.test_cli_runner().invoke(args=["ehr", "backup", str(file)])
    assert result.exit_code == 0, result.output
    assert (_mode(file.parent), _mode(file)) == (0o700, 0o600)
