-- E-mail notices (issue 5): messages rendered for the residents who asked for them, waiting
-- for the SMTP server, with retries. `notices` rows (queued by the ledger) get `sent_at` once
-- the mailer has turned them into mail (or found nobody to tell).
CREATE TABLE mail_outbox (
    id TEXT PRIMARY KEY,
    resident_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    to_address TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    sent_at BIGINT,
    last_error TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL;
CREATE INDEX notices_unsent ON notices (id) WHERE sent_at IS NULL;
