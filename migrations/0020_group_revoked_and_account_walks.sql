-- 0020_group_revoked_and_account_walks: a group's revoked certificates and an account's certificates are
-- walked in sort order.
-- Forward-only: once landed this file is never edited; changes go in a new numbered file.
-- Plain SQL that runs identically on PostgreSQL 15 and PGlite. No statement reads the server's clock
-- (DESIGN.md rule 4).
--
-- At ten million certificates (bench:inventory, docs/benchmarks.md) two searches missed the 50 ms p99:
-- - group + status=revoked: the revoked are ~2 % of a group, so a walk of the group's sort index read ~50 rows
--   per row returned, and the plan PostgreSQL keeps for the prepared statement (a generic plan) did just that:
--   p99 218 ms. Partial indexes of the revoked rows by group, in both sort orders, make it a walk of its own,
--   as certificates_revoked_not_after / _created (0013) do without a group. They grow only by revocations.
-- - account: an account's certificates were found through certificates_account_id and then sorted (an
--   account of 5,000 certificates: p99 162 ms for a page). Keyed by account and issuance time instead, the
--   default order (newest first) is a walk that stops at the page; the same lookups by account use it as they
--   used the old index, which it replaces (one index per issuance, as before).
CREATE INDEX certificates_group_revoked_not_after ON certificates (group_name, not_after, serial) WHERE status = 'revoked' AND group_name IS NOT NULL;
CREATE INDEX certificates_group_revoked_created ON certificates (group_name, created_at, serial) WHERE status = 'revoked' AND group_name IS NOT NULL;

CREATE INDEX certificates_account_created ON certificates (account_id, created_at, serial) WHERE account_id IS NOT NULL;
DROP INDEX certificates_account_id;
