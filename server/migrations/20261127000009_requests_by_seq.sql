-- Request records in the order they were answered, keyed by `seq` (batch * 4096 + place in
-- the batch, `journal::request_seq`) with no index on the client id: the writer keeps every
-- id with its seq in memory (loaded at start-up) and reads a stored answer by seq. An index
-- on random ids had a page rewritten per request in every round (docs/benchmarks.md,
-- session 6).
CREATE TABLE requests_by_seq (
    seq BIGINT PRIMARY KEY,
    id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status BIGINT NOT NULL,
    response TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
-- Records from before keep their order, numbered below every new one (-1 the newest).
INSERT INTO requests_by_seq (seq, id, fingerprint, status, response, created_at)
SELECT -ROW_NUMBER() OVER (ORDER BY created_at DESC, id DESC), id, fingerprint, status, response, created_at
FROM requests;
DROP TABLE requests;
ALTER TABLE requests_by_seq RENAME TO requests;
