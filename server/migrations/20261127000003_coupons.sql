-- Coupon codes of partner conversions (DOMAIN.md "Partner conversion"). Only the SHA-256 of a
-- code is stored. Codes come from HMAC-SHA-256(coupon key, batch id, index), so the same batch
-- request gives the same codes again (idempotency) without the codes ever being stored.
CREATE TABLE coupon_batches (
    id TEXT PRIMARY KEY,
    partner_id BIGINT NOT NULL,
    fingerprint TEXT NOT NULL,
    count BIGINT NOT NULL,
    partner_points TEXT NOT NULL,
    rate TEXT NOT NULL,
    points BIGINT NOT NULL,
    delivery TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- state: issued | redeemed. A code is claimed (redeemed_by set) before its conversion runs;
-- the conversion's id is derived from the code, so a retry replays it.
CREATE TABLE coupons (
    code_hash TEXT PRIMARY KEY,
    batch_id TEXT NOT NULL,
    partner_id BIGINT NOT NULL,
    state TEXT NOT NULL,
    redeemed_by BIGINT,
    redeemed_at BIGINT
);
CREATE INDEX coupons_by_batch ON coupons (batch_id);
