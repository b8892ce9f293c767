-- Refusals are answered and not kept (a refusal changed nothing, and the same id may be sent
-- again). Records of refusals from before that rule would be the only stored answers that are
-- not receipts; the engine reads every stored answer back as the receipt it was, so they go:
-- their ids become free again, as every later refusal's is.
DELETE FROM requests WHERE status >= 400;
