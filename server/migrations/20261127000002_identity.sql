-- MyKey IDs and card login (DOMAIN.md "MyKey ID", CARD.md). The card binding is the
-- authentication certificate's issuer (DER name, hex) and serial number (hex); the 12-digit
-- My Number is never read, so it cannot be stored.

-- One row per MyKey ID ever issued. An ID is never issued twice: a changed or revoked ID
-- keeps its row. status: live | changed | revoked. At most one live ID per certificate and
-- per resident.
CREATE TABLE mykey_ids (
    id TEXT PRIMARY KEY,
    resident_id BIGINT NOT NULL,
    status TEXT NOT NULL,
    cert_issuer TEXT NOT NULL,
    cert_serial TEXT NOT NULL,
    cert_not_after BIGINT NOT NULL,
    -- argon2id PHC string.
    password_hash TEXT NOT NULL,
    email TEXT,
    -- Comma-separated notice kinds: points_granted, points_expired, settings_changed, mykey_id_changed.
    notices TEXT NOT NULL,
    home_municipality BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE UNIQUE INDEX mykey_ids_live_card ON mykey_ids (cert_issuer, cert_serial) WHERE status = 'live';
CREATE UNIQUE INDEX mykey_ids_live_resident ON mykey_ids (resident_id) WHERE status = 'live';

-- The candidate dialogue of one card, kept server-side so that starting again does not reset
-- its counts. Removed when the MyKey ID is registered or changed.
CREATE TABLE mykey_id_drafts (
    cert_issuer TEXT NOT NULL,
    cert_serial TEXT NOT NULL,
    generated BIGINT NOT NULL,
    failed_checks BIGINT NOT NULL,
    checks BIGINT NOT NULL,
    candidate TEXT,
    candidate_final BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (cert_issuer, cert_serial)
);

-- Browser sessions; only the SHA-256 of the cookie is stored. A card session without a
-- resident may only continue a registration.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    resident_id BIGINT,
    method TEXT NOT NULL,
    cert_issuer TEXT,
    cert_serial TEXT,
    cert_not_after BIGINT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_resident ON sessions (resident_id);

-- The MyKey ID usage history: registration, logins, changes, revocation, re-binding. A row is
-- written with the change it records; the writer then appends it to the tamper-evident log
-- and sets `leaf_index` (rows still without one are appended at start-up: an outbox).
CREATE TABLE mykey_id_events (
    id TEXT PRIMARY KEY,
    resident_id BIGINT NOT NULL,
    mykey_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    leaf_index BIGINT
);
CREATE INDEX mykey_id_events_by_resident ON mykey_id_events (resident_id, created_at);
CREATE UNIQUE INDEX mykey_id_events_by_leaf ON mykey_id_events (leaf_index);
