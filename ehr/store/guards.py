"""Database guards that keep audit rows append-only: any UPDATE or DELETE aborts.

The application has no code path that changes or removes audit rows; these triggers make the
database refuse it too (an operator with DDL rights can drop them: tampering is then caught by
`flask ehr audit verify`, which checks the keyed hash chain and the checkpoint kept outside).
"""

from __future__ import annotations

GUARDED = ("audit_log", "audit_subjects", "audit_chain")

SQLITE_CREATE = [
    f"CREATE TRIGGER {table}_{op}_guard BEFORE {op.upper()} ON {table} BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END"
    for table in GUARDED
    for op in ("update", "delete")
]
SQLITE_DROP = [f"DROP TRIGGER IF EXISTS {table}_{op}_guard" for table in GUARDED for op in ("update", "delete")]

POSTGRES_CREATE = [
    """CREATE OR REPLACE FUNCTION ehr_audit_append_only() RETURNS trigger AS $$
    BEGIN RAISE EXCEPTION 'audit rows are append-only'; END; $$ LANGUAGE plpgsql""",
    *[f"CREATE TRIGGER {table}_guard BEFORE UPDATE OR DELETE ON {table} FOR EACH ROW EXECUTE FUNCTION ehr_audit_append_only()" for table in GUARDED],
]
POSTGRES_DROP = [*[f"DROP TRIGGER IF EXISTS {table}_guard ON {table}" for table in GUARDED], "DROP FUNCTION IF EXISTS ehr_audit_append_only()"]


def statements(dialect: str, create: bool) -> list[str]:
    if dialect == "postgresql":
        return POSTGRES_CREATE if create else POSTGRES_DROP
    return SQLITE_CREATE if create else SQLITE_DROP
