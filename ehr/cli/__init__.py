"""`flask ehr ...` operator commands."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ehr.cli.audit import audit
from ehr.cli.backup import backup, restore
from ehr.cli.catalogue import catalogue
from ehr.cli.access import care_group, client, facility, token
from ehr.cli.accounts import patient_account, staff
from ehr.cli.conformance import conformance
from ehr.cli.demo import demo
from ehr.cli.imports import import_
from ehr.cli.index import index
from ehr.cli.keys import keys
from ehr.cli.signing import signing_group

ehr_group = AppGroup("ehr", help="EHR operator commands (demo data, import, keys, search index).")
ehr_group.add_command(demo)
ehr_group.add_command(keys)
ehr_group.add_command(index)
ehr_group.add_command(conformance)
ehr_group.add_command(import_)
for _command in (facility, client, token, care_group, staff, patient_account):
    ehr_group.add_command(_command)
ehr_group.add_command(audit)
ehr_group.add_command(signing_group)
ehr_group.add_command(catalogue)
for _command in (backup, restore):
    ehr_group.add_command(_command)

__all__ = ["ehr_group", "click"]
