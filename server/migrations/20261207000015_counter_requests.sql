-- Which enrolled device sent each counter payment, hold and refund (docs/counter.md "Daily
-- close"). A row is written before the ledger applies the request, so every counter
-- transaction the ledger holds has one; a request the ledger refused leaves a row that joins
-- no transaction. The daily close reads the ledger's own postings and names their devices by it.
CREATE TABLE counter_requests (
    id TEXT PRIMARY KEY,
    shop_id BIGINT NOT NULL,
    device_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
