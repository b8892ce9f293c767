-- Point-navi's directory (issue 5): the services each municipality has set up, the products
-- of the online shop, and the online services (an online shop, a crowdfunding site) whose
-- member IDs a resident registers on my page so that they take the resident's points.

-- 1 or 0 per service, as the council's list of services started says.
CREATE TABLE municipality_services (
    municipality_id BIGINT PRIMARY KEY,
    library BIGINT NOT NULL,
    meibutsu_choice BIGINT NOT NULL,
    shops BIGINT NOT NULL,
    note TEXT NOT NULL
);

-- section: recommended | popular. price_yen: a decimal, shipping included.
CREATE TABLE products (
    id BIGINT PRIMARY KEY,
    municipality_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    price_yen TEXT NOT NULL,
    section TEXT NOT NULL
);
CREATE INDEX products_by_municipality ON products (municipality_id);

-- kind: online_shop | crowdfunding.
CREATE TABLE online_services (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    name_en TEXT NOT NULL,
    kind TEXT NOT NULL
);

-- A store that belongs to an online service (0: a shop or facility of its own) charges a
-- resident's points by the member ID the resident linked.
ALTER TABLE shops ADD COLUMN online_service_id BIGINT NOT NULL DEFAULT 0;

-- A service link names a partner or an online service; the other is 0.
ALTER TABLE service_links ADD COLUMN online_service_id BIGINT NOT NULL DEFAULT 0;
DROP INDEX service_links_live;
CREATE UNIQUE INDEX service_links_live ON service_links (partner_id, online_service_id, service_id) WHERE status = 'live';

-- Lots whose "expiring within 30 days" notice has been queued, so it is queued once.
CREATE TABLE expiry_warnings (
    lot_id BIGINT PRIMARY KEY,
    created_at BIGINT NOT NULL
);
