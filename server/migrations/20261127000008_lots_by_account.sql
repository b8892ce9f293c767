-- Every payment updates `remaining` of the lots it spends. An index whose predicate reads
-- `remaining` is rewritten by each of those updates (SQLite re-evaluates the predicate;
-- PostgreSQL cannot update the row in place). The look-ups by account need no predicate:
-- a resident account has few lots, filtered after the index finds them.
DROP INDEX lots_open;
CREATE INDEX lots_by_account ON lots (account_id, expires_at);
