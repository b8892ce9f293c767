-- Standing mandates (issue 23, docs/checkout.md "Charging a linked member"): a linked member's
-- store charges nothing by the link alone. A store may ask, in the link session, for a mandate
-- with limits; the resident grants it in the widget with the link; the store then charges by
-- the mandate's opaque id within its terms, and the resident revokes it at once on my page.
ALTER TABLE link_sessions ADD COLUMN mandate_max_per_charge BIGINT;
ALTER TABLE link_sessions ADD COLUMN mandate_max_per_month BIGINT;
ALTER TABLE link_sessions ADD COLUMN mandate_ends_on TEXT;

-- state: active | revoked (`ended` is read from `ends_at`). `ends_at`: the first moment no
-- charge may be made (the start of the day after the last one, Japan time).
CREATE TABLE mandates (
    id TEXT PRIMARY KEY,
    shop_id BIGINT NOT NULL,
    resident_id BIGINT NOT NULL,
    municipality_id BIGINT NOT NULL,
    link_id TEXT NOT NULL,
    session_id TEXT NOT NULL UNIQUE,
    max_per_charge BIGINT NOT NULL CHECK (max_per_charge > 0),
    max_per_month BIGINT NOT NULL CHECK (max_per_month >= max_per_charge),
    ends_on TEXT NOT NULL,
    ends_at BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'revoked')),
    granted_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX mandates_by_resident ON mandates (resident_id, granted_at);
CREATE INDEX mandates_by_link ON mandates (link_id);

-- One row per charge the store asked for, written before the ledger is asked (`pending`) and
-- marked `charged` once it committed; a refused charge's row is deleted. A pending row counts
-- against the month's limit, so a crash between the two can only under-use the limit.
CREATE TABLE mandate_charges (
    request_id TEXT PRIMARY KEY,
    mandate_id TEXT NOT NULL,
    month TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    reference TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'charged')),
    created_at BIGINT NOT NULL
);
CREATE INDEX mandate_charges_by_mandate ON mandate_charges (mandate_id, month);
