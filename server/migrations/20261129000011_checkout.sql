-- Store checkout (issue 14, docs/checkout.md): a store's origins, publishable key and webhook;
-- its signing secrets; the sessions its server opens and residents confirm; refunds; and the
-- events waiting for (or past) delivery to the store's server.
CREATE TABLE checkout_settings (
    shop_id BIGINT PRIMARY KEY,
    publishable_key TEXT NOT NULL UNIQUE,
    origins TEXT NOT NULL,
    webhook_url TEXT,
    updated_at BIGINT NOT NULL
);

-- A secret signs events from `created_at` until `retired_at` (set when a newer one replaces it).
CREATE TABLE webhook_secrets (
    secret TEXT PRIMARY KEY,
    shop_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);
CREATE INDEX webhook_secrets_by_shop ON webhook_secrets (shop_id, created_at);

-- `request_id` is the store's idempotency id, unique per store; `fingerprint` tells a retry
-- from another session under the same id. Only the client secret's SHA-256 is kept.
CREATE TABLE checkout_sessions (
    id TEXT PRIMARY KEY,
    shop_id BIGINT NOT NULL,
    request_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    amount BIGINT NOT NULL,
    points BIGINT NOT NULL,
    captured BIGINT NOT NULL,
    refunded BIGINT NOT NULL,
    order_reference TEXT NOT NULL,
    line_items TEXT NOT NULL,
    partial_points BIGINT NOT NULL,
    capture_method TEXT NOT NULL,
    hold_seconds BIGINT NOT NULL,
    return_url TEXT,
    metadata TEXT NOT NULL,
    -- While `confirming`: the ledger request that charges (or holds) the points, so that a
    -- confirmation cut short by a crash is finished with the same id.
    charge_id TEXT,
    resident_id BIGINT,
    event_id BIGINT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    confirmed_at BIGINT,
    CHECK (refunded >= 0 AND refunded <= captured AND captured <= points AND points <= amount)
);
CREATE UNIQUE INDEX checkout_sessions_by_request ON checkout_sessions (shop_id, request_id);
CREATE INDEX checkout_sessions_open ON checkout_sessions (expires_at) WHERE state IN ('open', 'confirming', 'authorized');

-- A refund is written `pending` (reserving its points under the session's `refunded`) before
-- the ledger moves them, and `done` after; pending ones are finished at start-up.
CREATE TABLE checkout_refunds (
    session_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    points BIGINT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (session_id, request_id)
);
CREATE INDEX checkout_refunds_pending ON checkout_refunds (created_at) WHERE state = 'pending';

CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY,
    shop_id BIGINT NOT NULL,
    session_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    -- Retries last `WEBHOOK_RETRY_DAYS` from here: the event's creation, or its last resend.
    retry_from BIGINT NOT NULL,
    next_attempt_at BIGINT,
    delivered_at BIGINT,
    failed_at BIGINT,
    last_error TEXT
);
CREATE INDEX webhook_events_due ON webhook_events (next_attempt_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX webhook_events_by_shop ON webhook_events (shop_id, created_at);
