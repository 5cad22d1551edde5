"""Tables of the encrypted store. Created only by migrations (migrations/versions).

No column holds personal data in plaintext: resource bodies are AES-GCM blobs, identifying search
values are keyed blind-index tokens. Every table with patient data carries `compartment` (the
patient's logical id) so the store can be distributed by patient (Citus) when one server is not
enough. Times are integer microseconds since the Unix epoch (UTC): exact, portable, cheap to compare.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from ehr.extensions import db

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer, "sqlite")

SHARED_COMPARTMENT = "*"

metadata = db.metadata

data_keys = Table(
    "data_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    # Patient logical id, or "*" for resources outside any patient compartment.
    Column("compartment", String(64), nullable=False, unique=True),
    Column("master_key_id", String(32), nullable=True),
    Column("wrapped", LargeBinary, nullable=True),  # NULL once crypto-shredded
    Column("created_at", BigInteger, nullable=False),
    Column("destroyed_at", BigInteger, nullable=True),
)

resources = Table(
    "resources",
    metadata,
    Column("resource_type", String(64), primary_key=True),
    Column("logical_id", String(64), primary_key=True),
    Column("version_id", Integer, nullable=False),
    Column("compartment", String(64), nullable=True),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("last_updated", BigInteger, nullable=False),
    # The organization whose user or system created the resource: a hospital's system client
    # always reads back what its own organization wrote.
    Column("created_by_org", String(64), nullable=True),
    # The Provenance whose signature covers the current version: a signed resource is read-only
    # (corrections go through the amend service, which signs the new version in turn).
    Column("signed_by", String(64), nullable=True),
    Index("ix_resources_compartment", "compartment"),
    Index("ix_resources_type_updated", "resource_type", "last_updated"),
)

resource_versions = Table(
    "resource_versions",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("resource_type", String(64), nullable=False),
    Column("logical_id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("compartment", String(64), nullable=True),
    Column("key_id", String(32), ForeignKey("data_keys.key_id"), nullable=True),
    Column("method", String(8), nullable=False),  # POST, PUT, PATCH, DELETE
    Column("last_updated", BigInteger, nullable=False),
    Column("blob", LargeBinary, nullable=True),  # NULL for a delete (tombstone) version
    UniqueConstraint("resource_type", "logical_id", "version_id", name="uq_resource_versions_rid_vid"),
    Index("ix_resource_versions_type_seq", "resource_type", "seq"),
    Index("ix_resource_versions_compartment", "compartment"),
    Index("ix_resource_versions_key", "key_id"),
)

# Token search index. `hash` holds a keyed blind-index token for identifying values (identifiers);
# `code` holds plain clinical codes (issue: search) where the threat model allows it.
idx_token = Table(
    "idx_token",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("resource_type", String(64), nullable=False),
    Column("logical_id", String(64), nullable=False),
    Column("compartment", String(64), nullable=True),
    Column("param", String(64), nullable=False),
    Column("system", Text, nullable=True),
    Column("code", Text, nullable=True),
    Column("hash", LargeBinary(16), nullable=True),
    Index("ix_idx_token_hash", "resource_type", "param", "hash"),
    Index("ix_idx_token_code", "resource_type", "param", "code", "system"),
    Index("ix_idx_token_rid", "resource_type", "logical_id", "param"),
)

# Every reference of a current resource version to a resource on this server. param "_ref" rows
# serve referential integrity and compartments; search parameters add their own rows.
idx_reference = Table(
    "idx_reference",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("resource_type", String(64), nullable=False),
    Column("logical_id", String(64), nullable=False),
    Column("compartment", String(64), nullable=True),
    Column("param", String(64), nullable=False),
    Column("target_type", String(64), nullable=False),
    Column("target_id", String(64), nullable=False),
    Index("ix_idx_reference_target", "target_type", "target_id", "param", "resource_type"),
    Index("ix_idx_reference_rid", "resource_type", "logical_id", "param"),
)

# String search index: keyed blind-index tokens only. kind "p" = a prefix of the folded value
# (case- and accent-insensitive starts-with), "e" = the exact value (:exact), "w" = a folded word
# of a code's text (:text).
idx_string = Table(
    "idx_string",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("resource_type", String(64), nullable=False),
    Column("logical_id", String(64), nullable=False),
    Column("compartment", String(64), nullable=True),
    Column("param", String(64), nullable=False),
    Column("kind", String(1), nullable=False),
    Column("hash", LargeBinary(16), nullable=False),
    Index("ix_idx_string_hash", "resource_type", "param", "kind", "hash"),
    Index("ix_idx_string_rid", "resource_type", "logical_id", "param"),
)

# Clinical dates as half-open ranges [low, high) in microseconds since the epoch (UTC). Birth dates
# never come here (they are blind buckets in idx_token).
idx_date = Table(
    "idx_date",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("resource_type", String(64), nullable=False),
    Column("logical_id", String(64), nullable=False),
    Column("compartment", String(64), nullable=True),
    Column("param", String(64), nullable=False),
    Column("low", BigInteger, nullable=False),
    Column("high", BigInteger, nullable=False),
    Index("ix_idx_date_low", "resource_type", "param", "low"),
    Index("ix_idx_date_high", "resource_type", "param", "high"),
    Index("ix_idx_date_compartment", "compartment", "resource_type", "param", "low"),
    Index("ix_idx_date_rid", "resource_type", "logical_id", "param"),
)

# Numbers and quantities (value with its system, code and unit for quantities).
idx_number = Table(
    "idx_number",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("resource_type", String(64), nullable=False),
    Column("logical_id", String(64), nullable=False),
    Column("compartment", String(64), nullable=True),
    Column("param", String(64), nullable=False),
    Column("value", Float, nullable=False),
    Column("system", Text, nullable=True),
    Column("code", Text, nullable=True),
    Column("unit", Text, nullable=True),
    Index("ix_idx_number_value", "resource_type", "param", "value"),
    Index("ix_idx_number_rid", "resource_type", "logical_id", "param"),
)

# Rows used only as locks: an upsert on a key serialises writers that test the same condition
# (conditional create, national-ID uniqueness) on SQLite and PostgreSQL alike.
write_locks = Table(
    "write_locks",
    metadata,
    Column("lock_key", LargeBinary(16), primary_key=True),
    Column("n", BigInteger, nullable=False),
)

# Operator and security events (key rotation, crypto-shredding). The access-control issue extends
# this into the full hash-chained audit trail. `detail` is encrypted under the shared data key.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("recorded_at", BigInteger, nullable=False),
    Column("action", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("principal", String(128), nullable=False),
    Column("compartment", String(64), nullable=True),
    Column("resource_type", String(64), nullable=True),
    Column("logical_id", String(64), nullable=True),
    Column("request_id", String(64), nullable=True),
    Column("key_id", String(32), nullable=True),
    Column("detail", LargeBinary, nullable=True),
    Column("organization", String(64), nullable=True),
    Column("patients", Text, nullable=True),  # space-separated patient ids a search returned
    Column("purpose", String(64), nullable=True),
    Column("source_hash", LargeBinary(16), nullable=True),  # keyed hash of the client address
    Index("ix_audit_log_compartment", "compartment", "seq"),
)

# Which patients each audit row is about (from its compartment and `patients`): the patient's own
# access log and an admin's per-patient report read this index instead of scanning. Append-only.
audit_subjects = Table(
    "audit_subjects",
    metadata,
    Column("patient_id", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
)

# The keyed hash chain over audit_log, sealed just behind the writes (append-only too).
audit_chain = Table(
    "audit_chain",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("mac", LargeBinary(32), nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("account_id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),  # staff or patient
    Column("username", String(128), nullable=True, unique=True),  # staff; normalised
    Column("national_id_hash", LargeBinary(16), nullable=True, unique=True),  # patients: blind token
    Column("patient_id", String(64), nullable=True),
    Column("organization_id", String(64), nullable=True),
    Column("role", String(16), nullable=False),  # doctor, nurse, receptionist, admin, patient
    Column("password_hash", Text, nullable=True),  # Argon2id PHC string; NULL until activated
    Column("totp_secret", LargeBinary, nullable=True),  # encrypted under the shared data key
    Column("totp_key_id", String(32), nullable=True),
    Column("totp_last_step", BigInteger, nullable=True),  # a TOTP code is accepted once
    Column("active", Boolean, nullable=False),
    Column("activation_hash", LargeBinary(32), nullable=True),
    Column("activation_expires", BigInteger, nullable=True),
    Column("display_name", LargeBinary, nullable=True),  # encrypted
    Column("created_at", BigInteger, nullable=False),
    # A temporary password (set by a facility admin) must be replaced at the next sign-in.
    Column("must_change_password", Boolean, nullable=False, server_default=false()),
    Column("licence_number", LargeBinary, nullable=True),  # staff: practising licence (chứng chỉ hành nghề), encrypted
    Column("practitioner_id", String(64), nullable=True),  # staff: their Practitioner, once made
    Column("practitioner_role_id", String(64), nullable=True),  # and PractitionerRole (facility + role)
)

sessions = Table(
    "sessions",
    metadata,
    Column("session_hash", LargeBinary(32), primary_key=True),  # SHA-256 of the cookie value
    Column("account_id", String(36), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("data", Text, nullable=False),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("account_key", LargeBinary(16), nullable=False),  # keyed hash of the login name
    Column("at", BigInteger, nullable=False),
    Index("ix_login_failures_key", "account_key", "at"),
)

api_clients = Table(
    "api_clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("organization_id", String(64), nullable=False),
    Column("jwks", Text, nullable=False),  # public keys only
    Column("scopes", Text, nullable=False),
    Column("purpose", String(16), nullable=False),  # purpose of use (v3 ActReason), e.g. TREAT
    Column("active", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# Access tokens of system clients: opaque random values, stored as SHA-256 only. Looking them up
# per request (a primary-key read) makes revocation of a client effective on its next request.
access_tokens = Table(
    "access_tokens",
    metadata,
    Column("token_hash", LargeBinary(32), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("scopes", Text, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("minted_by", String(64), nullable=True),  # an operator's CLI mint, else NULL
    Index("ix_access_tokens_expires", "expires_at"),
)

# A patient account that is the legal representative of another patient (a child, a ward).
representations = Table(
    "representations",
    metadata,
    Column("account_id", String(36), primary_key=True),
    Column("patient_id", String(64), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    Column("recorded_by", String(64), nullable=False),
)

client_jtis = Table(
    "client_jtis",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("jti", String(256), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),
)

care_relationships = Table(
    "care_relationships",
    metadata,
    Column("organization_id", String(64), primary_key=True),
    Column("patient_id", String(64), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    Column("source", String(32), nullable=False),  # registered, check-in, consent, break-glass, admin
    # EHR_CARE_DAYS after the latest check-in or encounter of the facility with the patient.
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_care_patient", "patient_id"),
)

break_glass = Table(
    "break_glass",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("account_id", String(36), nullable=False),
    Column("organization_id", String(64), nullable=True),
    Column("patient_id", String(64), nullable=False),
    Column("reason", LargeBinary, nullable=False),  # encrypted
    Column("key_id", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_break_glass_patient", "patient_id", "account_id"),
)

# Bulk Data export jobs: in the database so they survive a restart; the job key (for the files
# waiting to be downloaded) is wrapped by the master key like a data key.
export_jobs = Table(
    "export_jobs",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("requester", String(128), nullable=False),
    Column("level", String(16), nullable=False),  # system, patient or group
    Column("group_id", String(64), nullable=True),
    Column("types", Text, nullable=True),
    Column("since_us", BigInteger, nullable=True),
    Column("request_url", Text, nullable=False),
    Column("status", String(16), nullable=False),  # queued, running, completed, failed, cancelled
    Column("transaction_time", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger, nullable=True),
    Column("expires_at", BigInteger, nullable=True),
    Column("master_key_id", String(32), nullable=False),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("progress", Text, nullable=True),  # JSON checkpoint: finished types, current type position
    Column("lease_owner", String(96), nullable=True),
    Column("lease_until", BigInteger, nullable=True),
    Column("error", Text, nullable=True),
    # The requester's access context (JSON: kind, organization, scopes, purpose): the runner reads
    # with exactly the requester's rights, evaluated when it runs (a revoked consent is honoured).
    Column("context", Text, nullable=True),
    Index("ix_export_jobs_status", "status"),
)

# Which patients' data each export job has written to its files (one row per job and patient):
# revoking a consent cancels the jobs of that organization that hold the patient (issue 20).
export_subjects = Table(
    "export_subjects",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("compartment", String(64), primary_key=True),
    Index("ix_export_subjects_compartment", "compartment"),
)

# Import progress per input file (keyed by the SHA-256 of its content): a resumed import skips
# what an interrupted one already committed.
import_progress = Table(
    "import_progress",
    metadata,
    Column("file_key", String(64), primary_key=True),
    Column("file_name", Text, nullable=False),
    Column("position", Integer, nullable=False),
    Column("total", Integer, nullable=False),
    Column("done", Boolean, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# What a person had typed into a form when their session ended (issue 14): one per account and
# page, replaced by a newer one, deleted once restored, at logout and when it expires. The page is
# kept only as a keyed blind token; the fields are one AES-GCM blob under the shared data key,
# bound to the account and the page (ehr.services.drafts).
form_drafts = Table(
    "form_drafts",
    metadata,
    Column("account_id", String(36), primary_key=True),
    Column("path_hash", LargeBinary(16), primary_key=True),  # blind token of the page's path
    Column("key_id", String(32), nullable=False),
    Column("blob", LargeBinary, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_form_drafts_expires", "expires_at"),
)

# Catalogues (issue 15): the drug list, the service/technique list and the lab-test list, loaded by
# `flask ehr catalogue import`. Public reference data, not personal data: stored in plaintext.
# Each import of new content is a version (the rows' canonical SHA-256 makes re-imports no-ops);
# one version per kind is active, old ones stay so a coding keeps the version it was made with.
catalogue_versions = Table(
    "catalogue_versions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # drugs, services, labs
    Column("label", String(64), nullable=False),  # what writers put in Coding.version
    Column("imported_at", BigInteger, nullable=False),
    Column("source", String(255), nullable=False),  # file name imported
    Column("row_count", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),  # of the canonical accepted rows
    Column("active", Boolean, nullable=False, default=False),
    UniqueConstraint("kind", "sha256", name="uq_catalogue_versions_kind_sha256"),
    UniqueConstraint("kind", "label", name="uq_catalogue_versions_kind_label"),
    Index("ix_catalogue_versions_kind_active", "kind", "active"),
)

catalogue_rows = Table(
    "catalogue_rows",
    metadata,
    Column("version_id", BigInteger().with_variant(Integer, "sqlite"), ForeignKey("catalogue_versions.id"), primary_key=True),
    Column("code", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("name", Text, nullable=False),
    Column("data", Text, nullable=False),  # JSON of the kind's fields (ehr.services.catalogue)
)

INDEX_TABLES = (idx_token, idx_reference, idx_string, idx_date, idx_number)
AUDIT_TABLES = (audit_log, audit_subjects, audit_chain)
ALL_TABLES = (
    *INDEX_TABLES, write_locks, *AUDIT_TABLES, export_subjects, export_jobs, import_progress, form_drafts, catalogue_rows, catalogue_versions, sessions, login_failures, client_jtis,
    access_tokens, representations, care_relationships, break_glass, api_clients, accounts, resource_versions, resources, data_keys,
)
