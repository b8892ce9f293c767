-- Point vouchers (docs/counter.md "Point vouchers"): one row per voucher, written by the
-- materialiser from the ledger's changes. `lots` is JSON: the points the voucher took, as
-- [expires_at, points] pairs, which its return gives back. The ledger keeps the open ones in
-- memory and loads them from here at start-up.
CREATE TABLE vouchers (
    number BIGINT PRIMARY KEY,
    id TEXT NOT NULL,
    resident_id BIGINT NOT NULL,
    account_id BIGINT NOT NULL,
    municipality_id BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    state TEXT NOT NULL,
    issued_by BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    lots TEXT NOT NULL,
    issue_seq BIGINT NOT NULL,
    settled_at BIGINT,
    settled_by BIGINT,
    settle_seq BIGINT,
    CHECK (amount > 0),
    CHECK (state IN ('open', 'redeemed', 'returned')),
    CHECK ((state = 'open') = (settled_at IS NULL)),
    CHECK (state <> 'redeemed' OR settled_by IS NOT NULL)
);
CREATE INDEX vouchers_by_resident ON vouchers (resident_id, issued_at);
CREATE INDEX vouchers_open ON vouchers (state) WHERE state = 'open';
