-- Partners embed widgets too (issue 15, docs/partners.md): a store's or a partner's origins,
-- publishable key, webhook URL, signing secrets and events are one thing, the embedding, owned
-- by `shop:<id>` or `partner:<id>`.
CREATE TABLE embed_settings (
    owner TEXT PRIMARY KEY,
    publishable_key TEXT NOT NULL UNIQUE,
    origins TEXT NOT NULL,
    webhook_url TEXT,
    updated_at BIGINT NOT NULL
);
INSERT INTO embed_settings (owner, publishable_key, origins, webhook_url, updated_at)
    SELECT 'shop:' || shop_id, publishable_key, origins, webhook_url, updated_at FROM checkout_settings;
DROP TABLE checkout_settings;

ALTER TABLE webhook_secrets ADD COLUMN owner TEXT NOT NULL DEFAULT '';
UPDATE webhook_secrets SET owner = 'shop:' || shop_id;
DROP INDEX webhook_secrets_by_shop;
ALTER TABLE webhook_secrets DROP COLUMN shop_id;
CREATE INDEX webhook_secrets_by_owner ON webhook_secrets (owner, created_at);

-- `subject_id`: what the event is about (a checkout session, a link session, a redemption);
-- one subject's events are delivered in order.
ALTER TABLE webhook_events ADD COLUMN owner TEXT NOT NULL DEFAULT '';
UPDATE webhook_events SET owner = 'shop:' || shop_id;
DROP INDEX webhook_events_by_shop;
ALTER TABLE webhook_events DROP COLUMN shop_id;
ALTER TABLE webhook_events RENAME COLUMN session_id TO subject_id;
CREATE INDEX webhook_events_by_owner ON webhook_events (owner, created_at);

-- Proven ID links: the partner's (or online service's) server names its signed-in member's
-- service ID in a link session; the link goes live only when a resident confirms it in the
-- widget. state: open | linked | cancelled | expired (expiry is read from `expires_at`).
CREATE TABLE link_sessions (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    request_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    partner_id BIGINT NOT NULL,
    online_service_id BIGINT NOT NULL,
    service_id TEXT NOT NULL,
    state TEXT NOT NULL,
    return_url TEXT,
    resident_id BIGINT,
    link_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    confirmed_at BIGINT
);
CREATE UNIQUE INDEX link_sessions_by_request ON link_sessions (owner, request_id);

-- Links typed on my page before link sessions proved nothing: they become `unproven`. They no
-- longer receive conversions or charges and no longer block the member who proves the ID; the
-- resident sees them on my page (to cut) and the partner can prove them with a link session.
UPDATE service_links SET status = 'unproven' WHERE status = 'live';


-- A partner may have the points cloud mail a code to its member once (the outbox sends it).
ALTER TABLE coupons ADD COLUMN mailed_at BIGINT;
