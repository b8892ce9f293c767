-- The ledger schema. The same SQL runs on SQLite and PostgreSQL: integer ids assigned by the
-- engine (no sequences), times as BIGINT microseconds since the Unix epoch (UTC), UUIDs as
-- TEXT. `municipality_id` is the shard key of every row that belongs to one municipality
-- (docs/scaling.md); 0 marks the partner hub.

CREATE TABLE municipalities (
    id BIGINT PRIMARY KEY,
    prefecture_code TEXT NOT NULL,
    prefecture TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    expiry_days BIGINT NOT NULL,
    treasury_account BIGINT NOT NULL,
    breakage_account BIGINT NOT NULL
);

CREATE TABLE partners (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    name_en TEXT NOT NULL,
    point_kind TEXT NOT NULL,
    exchange_method TEXT NOT NULL,
    clearing_account BIGINT NOT NULL
);

CREATE TABLE shops (
    id BIGINT PRIMARY KEY,
    municipality_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    receivable_account BIGINT NOT NULL
);

CREATE TABLE events (
    id BIGINT PRIMARY KEY,
    municipality_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE residents (
    id BIGINT PRIMARY KEY,
    municipality_id BIGINT NOT NULL,
    reserved_account BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- kind: reserved | municipal | event | treasury | breakage | clearing | receivable
-- currency: reserved | municipal:<id>; event_id 0 when not an event account.
CREATE TABLE accounts (
    id BIGINT PRIMARY KEY,
    municipality_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    currency TEXT NOT NULL,
    owner_id BIGINT NOT NULL,
    event_id BIGINT NOT NULL,
    balance BIGINT NOT NULL,
    held BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    CHECK (held >= 0),
    CHECK (kind NOT IN ('reserved', 'municipal', 'event') OR balance - held >= 0)
);
CREATE UNIQUE INDEX accounts_by_owner ON accounts (owner_id, kind, currency, event_id);

CREATE TABLE transactions (
    seq BIGINT PRIMARY KEY,
    -- Client ids are unique through `requests`; no index here keeps each batch's writes
    -- to the pages it must touch.
    id TEXT NOT NULL,
    municipality_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    memo TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE postings (
    seq BIGINT NOT NULL,
    leg BIGINT NOT NULL,
    account_id BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    balance_after BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (seq, leg)
);
CREATE INDEX postings_by_account ON postings (account_id, seq);

CREATE TABLE lots (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    source TEXT NOT NULL,
    partner_id BIGINT,
    amount BIGINT NOT NULL,
    remaining BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    CHECK (remaining >= 0 AND remaining <= amount)
);
CREATE INDEX lots_open ON lots (account_id, expires_at) WHERE remaining > 0;

CREATE TABLE holds (
    id TEXT PRIMARY KEY,
    account_id BIGINT NOT NULL,
    shop_account BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    state TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    capture_seq BIGINT,
    created_at BIGINT NOT NULL,
    resolved_at BIGINT
);
CREATE INDEX holds_active ON holds (expires_at) WHERE state = 'active';

-- Idempotency: every id ever used, with the request's fingerprint and the answer given.
CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    status BIGINT NOT NULL,
    response TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE notices (
    id BIGINT PRIMARY KEY,
    resident_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);

-- API keys: only the SHA-256 of the key is stored. role: operator | municipality | partner |
-- store | terminal | resident; subject: the municipality, partner, shop or resident id.
CREATE TABLE api_keys (
    key_hash TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    subject BIGINT NOT NULL,
    label TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- The last journaled batch whose rows are in the tables above (see server/src/journal.rs).
CREATE TABLE materialized (
    id BIGINT PRIMARY KEY,
    through_batch BIGINT NOT NULL
);
INSERT INTO materialized (id, through_batch) VALUES (1, 0);

-- The tamper-evident log (server/src/log.rs, docs/log-format.md): one leaf per committed
-- transaction, and the tree's stored hashes (Go tlog layout: leaf hashes and the hash of
-- every complete subtree, keyed by stored-hash index).
CREATE TABLE log_leaves (
    idx BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    data BYTEA NOT NULL,
    hash BYTEA NOT NULL
);

CREATE TABLE log_hashes (
    idx BIGINT PRIMARY KEY,
    hash BYTEA NOT NULL
);

-- Every checkpoint the log published (with its cosignatures), for audits and monitors.
CREATE TABLE checkpoints (
    size BIGINT PRIMARY KEY,
    note TEXT NOT NULL,
    cosignatures BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
