-- An API key stops working when it is revoked (`POST /v1/api-keys/{key_id}/revoke`,
-- `mykey-server revoke-api-key`); the row stays as the record of who held it.
ALTER TABLE api_keys ADD COLUMN revoked_at BIGINT;
