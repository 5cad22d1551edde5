"""`flask ehr ...` operator commands."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ehr.cli.demo import demo
from ehr.cli.keys import keys

ehr_group = AppGroup("ehr", help="EHR operator commands (demo data, keys).")
ehr_group.add_command(demo)
ehr_group.add_command(keys)

__all__ = ["ehr_group", "click"]
