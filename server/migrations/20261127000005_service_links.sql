-- ID linkage (DOMAIN.md "Partner conversion", method 1): a resident registers a partner's
-- service ID (a mileage number, a member number) on my page; the partner then pushes
-- conversions for that member. status: live | revoked. One live link per partner service ID.
CREATE TABLE service_links (
    id TEXT PRIMARY KEY,
    resident_id BIGINT NOT NULL,
    partner_id BIGINT NOT NULL,
    service_id TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE UNIQUE INDEX service_links_live ON service_links (partner_id, service_id) WHERE status = 'live';
CREATE INDEX service_links_by_resident ON service_links (resident_id);
