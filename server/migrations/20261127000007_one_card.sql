-- One card (DOMAIN.md "One card"): a facility (a shop row: a library, a museum, a gym)
-- registers the service whose patron numbers it keeps; staff at its counter terminal link a
-- resident's MyKey ID to the facility's own patron number with the resident present (card and
-- PIN); a card read there afterwards returns that patron number and nothing else.
CREATE TABLE facility_services (
    shop_id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- status: live | revoked. One live link per patron number and per resident at a facility.
CREATE TABLE patron_links (
    id TEXT PRIMARY KEY,
    shop_id BIGINT NOT NULL,
    resident_id BIGINT NOT NULL,
    patron_number TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE UNIQUE INDEX patron_links_number ON patron_links (shop_id, patron_number) WHERE status = 'live';
CREATE UNIQUE INDEX patron_links_resident ON patron_links (shop_id, resident_id) WHERE status = 'live';
CREATE INDEX patron_links_by_resident ON patron_links (resident_id);
