-- Counter terminals are enrolled devices (issue 24, docs/counter.md "Devices"): the shop makes
-- a pairing code that works once within minutes; the terminal page makes a P-256 key it cannot
-- export and enrols its public key with the code; from then on it signs every request
-- (RFC 9421). Only the code's SHA-256 is kept.
CREATE TABLE pairing_codes (
    code_hash TEXT PRIMARY KEY,
    shop_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL CHECK (expires_at > created_at),
    used_at BIGINT,
    device_id TEXT,
    CHECK ((used_at IS NULL) = (device_id IS NULL))
);
CREATE INDEX pairing_codes_by_shop ON pairing_codes (shop_id, created_at);

-- public_key: the uncompressed P-256 point, base64url. last_seen_at: to the minute.
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    shop_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    public_key TEXT NOT NULL UNIQUE,
    enrolled_at BIGINT NOT NULL,
    last_seen_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX devices_by_shop ON devices (shop_id, enrolled_at);

-- Terminal bearer keys are retired: a key alone could be copied off a counter PC and used
-- anywhere. Every live terminal key is revoked here (SQL shared by SQLite and PostgreSQL has
-- no common clock in microseconds, so the revocation is dated at the key's creation); the
-- server refuses the role with a problem that says to enrol the terminal as a device.
UPDATE api_keys SET revoked_at = created_at WHERE role = 'terminal' AND revoked_at IS NULL;
