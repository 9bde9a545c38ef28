"""The clinic server's own tables (component ``clinic``).

Times are seconds since the epoch (UTC) as DOUBLE PRECISION; ``day`` columns hold the clinic's
local date (YYYY-MM-DD) so a day's records come from an index. Booleans are INTEGER 0/1.
Certificate serials are decimal TEXT (they are larger than 64 bits).
"""

from __future__ import annotations

from clinic.storage import Migration, Schema

_V1_COMMON = """
CREATE TABLE devices (
    device_id TEXT PRIMARY KEY,
    created_at DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION,
    health_status TEXT,
    health_detail TEXT,
    health_at DOUBLE PRECISION
);
CREATE TABLE device_certificates (
    serial TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices (device_id),
    fingerprint TEXT NOT NULL UNIQUE,
    not_after DOUBLE PRECISION NOT NULL,
    issued_at DOUBLE PRECISION NOT NULL,
    revoked_at DOUBLE PRECISION
);
CREATE INDEX device_certificates_device ON device_certificates (device_id);
CREATE TABLE challenges (
    nonce TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    issued_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    used_at DOUBLE PRECISION
);
CREATE INDEX challenges_issued ON challenges (issued_at);
CREATE TABLE verifications (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    mode TEXT NOT NULL,
    state TEXT NOT NULL,
    reason_code TEXT NOT NULL,
    validity_code INTEGER,
    patient_message TEXT NOT NULL,
    temporary INTEGER NOT NULL DEFAULT 0,
    needs_staff INTEGER NOT NULL DEFAULT 0,
    cert_issuer TEXT,
    cert_serial TEXT,
    cert_not_after DOUBLE PRECISION,
    in_grace INTEGER NOT NULL DEFAULT 0,
    records TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    day TEXT NOT NULL,
    decided_by TEXT,
    decided_at DOUBLE PRECISION,
    handled_by TEXT,
    handled_at DOUBLE PRECISION
);
CREATE INDEX verifications_day ON verifications (day, created_at);
CREATE INDEX verifications_queue ON verifications (needs_staff, handled_at);
CREATE TABLE national_insured (
    issuer TEXT NOT NULL,
    serial TEXT NOT NULL,
    card_id TEXT NOT NULL,
    validity_code INTEGER NOT NULL,
    records TEXT NOT NULL,
    revoked_at DOUBLE PRECISION,
    loaded_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (issuer, serial)
);
CREATE INDEX national_insured_card ON national_insured (card_id);
CREATE TABLE staff (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    is_admin INTEGER NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until DOUBLE PRECISION
);
CREATE TABLE staff_sessions (
    token_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES staff (username),
    csrf_token TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL
);
"""

_V1_ACCESS_LOG_SQLITE = """
CREATE TABLE access_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at DOUBLE PRECISION NOT NULL,
    username TEXT NOT NULL,
    action TEXT NOT NULL,
    verification_id TEXT,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    entry_hash TEXT NOT NULL
);
CREATE TRIGGER access_log_no_update BEFORE UPDATE ON access_log
BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END;
CREATE TRIGGER access_log_no_delete BEFORE DELETE ON access_log
BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END
"""

_V1_ACCESS_LOG_POSTGRESQL = """
CREATE TABLE access_log (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at DOUBLE PRECISION NOT NULL,
    username TEXT NOT NULL,
    action TEXT NOT NULL,
    verification_id TEXT,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    entry_hash TEXT NOT NULL
);
CREATE FUNCTION access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS
'BEGIN RAISE EXCEPTION ''the access log is append-only''; END';
CREATE TRIGGER access_log_no_change BEFORE UPDATE OR DELETE ON access_log
FOR EACH ROW EXECUTE FUNCTION access_log_append_only()
"""

CLINIC_SCHEMA = Schema(
    "clinic",
    (
        Migration(
            1,
            _V1_COMMON + ";" + _V1_ACCESS_LOG_SQLITE,
            _V1_COMMON + ";" + _V1_ACCESS_LOG_POSTGRESQL,
        ),
    ),
)


# --- result files for receipt software (clinic.receipt_files) ---------------------------------
# A component of its own, so its versions never collide with the tables above.

_RECEIPT_FILES_V1 = """
CREATE TABLE receipt_files (
    verification_id TEXT PRIMARY KEY,
    file_name TEXT NOT NULL,
    answered_at DOUBLE PRECISION NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error_code TEXT,
    last_error TEXT,
    substituted TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    next_try_at DOUBLE PRECISION NOT NULL,
    written_at DOUBLE PRECISION
);
CREATE INDEX receipt_files_due ON receipt_files (state, next_try_at);
CREATE TABLE manual_confirmations (
    verification_id TEXT PRIMARY KEY,
    method TEXT NOT NULL,
    details TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at DOUBLE PRECISION NOT NULL,
    day TEXT NOT NULL,
    recheck_state TEXT NOT NULL,
    rechecked_at DOUBLE PRECISION,
    recheck_reason TEXT
);
CREATE INDEX manual_confirmations_recheck ON manual_confirmations (recheck_state)
"""

RECEIPT_FILES_SCHEMA = Schema("receipt_files", (Migration.portable(1, _RECEIPT_FILES_V1),))
# --- staff calls (clinic.staff_calls), a component of its own -----------------------------------

_STAFF_CALLS_V1 = """
CREATE TABLE staff_calls (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    call_key TEXT NOT NULL,
    visit INTEGER NOT NULL,
    reason TEXT NOT NULL,
    notice INTEGER,
    verification_id TEXT,
    raised_at DOUBLE PRECISION NOT NULL,
    late INTEGER NOT NULL DEFAULT 0,
    cleared_at DOUBLE PRECISION,
    cleared_by TEXT,
    UNIQUE (device_id, call_key)
);
CREATE INDEX staff_calls_open ON staff_calls (cleared_at, raised_at);
CREATE INDEX staff_calls_verification ON staff_calls (verification_id)
"""

#: The kiosks' staff calls: one row per call, open until the kiosk or staff clear it.
STAFF_CALLS_SCHEMA = Schema("staff_calls", (Migration.portable(1, _STAFF_CALLS_V1),))
