-- 0005_acme_spent_nonces: nonces that cost nothing to issue (issue #3, RFC 8555 §6.5).
-- Forward-only: once landed this file is never edited; changes go in a new numbered file.
-- Plain SQL that runs identically on PostgreSQL 15 and PGlite.

-- A nonce is now issuedAt || random || MAC (src/acme/nonce-store.ts): any instance holding the shared key
-- checks that this server issued it and how old it is without the database, so issuing writes nothing. What
-- must be shared (rule 7) is only which nonces were spent: one row per spent nonce, inserted by the request
-- that spends it. The primary key makes spending atomic across instances (of two racing requests one
-- inserts, the other conflicts: badNonce). id is issuedAt (6 bytes, big-endian ms) || random (16 bytes), so
-- the key sorts by issue time: inserts land at the right edge of the index and the purge of records older
-- than the nonce lifetime is a range delete on the same index (no second index to maintain per request).
CREATE TABLE spent_nonces (
  id bytea PRIMARY KEY CHECK (length(id) = 22)
);

-- 0002's nonces table (one row per issued nonce, deleted when spent) is no longer written or read. It is
-- left in place so instances still running the previous version keep working during a rolling upgrade
-- (their nonces are simply refused by upgraded instances: badNonce, and the client retries, §6.5).
-- TODO(#3): drop it once no deployment runs the 0002-era nonce store.
