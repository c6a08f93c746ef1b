-- 0013_inventory_search: what the inventory's one filter grammar needs to answer at ten million certificates
-- (DESIGN.md rule 9: every list is a keyset walk over an index, never OFFSET), and the certificate counts by
-- group, status and expiry bucket kept exact without counting the table.
-- Forward-only: once landed this file is never edited; changes go in a new numbered file.
-- Plain SQL and PL/pgSQL that run identically on PostgreSQL 15 and PGlite. No statement reads the server's
-- clock (rule 4): every "now" is a parameter written by the application.

-- Keyset pages sort on (not_after, serial) and (created_at, serial): unique, and immutable once stored, so
-- a row that existed when the first page was read is met exactly once however many rows arrive between
-- pages. (not_after) alone cannot bound a row comparison on both columns; this index serves every reader of
-- the old one too.
CREATE INDEX certificates_not_after_serial ON certificates (not_after, serial);
DROP INDEX certificates_not_after;

-- A group's certificates soonest-expiring first (0011 has the group's newest-first walk).
CREATE INDEX certificates_group_not_after ON certificates (group_name, not_after, serial) WHERE group_name IS NOT NULL;

-- Revoked certificates are 1-2 % of an estate: walking a whole sort index for them would read ~50 rows per
-- row returned. Small partial indexes make `status=revoked` a walk of its own.
CREATE INDEX certificates_revoked_not_after ON certificates (not_after, serial) WHERE status = 'revoked';
CREATE INDEX certificates_revoked_created ON certificates (created_at, serial) WHERE status = 'revoked';

-- label=key:value (repeatable): containment of {"key": "value"} pairs. Broad labels (env=prod) walk a sort
-- index and check this on the row; narrow ones (owner=team-x) are found through it.
CREATE INDEX certificates_labels ON certificates USING gin (labels jsonb_path_ops) WHERE labels IS NOT NULL;

-- One row per identifier of a certificate, its value reversed: `name` (exact) is an equality and `suffix`
-- (.pay.internal) a prefix range on the reversed value, both on one b-tree. COLLATE "C" makes the order
-- bytewise, so a prefix is a contiguous range whatever the database's collation. not_after and created_at
-- ride along (INCLUDE) so a suffix that matches thousands of certificates is narrowed, sorted and cut to a
-- page from this index alone before any certificate row is read. Rows never change: identifiers,
-- not_after and created_at of a stored certificate are immutable.
CREATE TABLE certificate_names (
  name_reversed text COLLATE "C" NOT NULL,
  serial text NOT NULL,
  not_after timestamptz NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX certificate_names_key ON certificate_names (name_reversed, serial) INCLUDE (not_after, created_at);

-- Counts by group x status x expiry bucket (valid, expired, expiring within 7/30/90 days, revoked), exact.
-- Buckets move with time, so the folded counts are kept relative to one instant (certificate_counts_as_of)
-- and a read moves them to its own "now" by counting only the certificates whose bucket changed between
-- the two (a few minutes of expiries per boundary: an index range on not_after). Every change to a
-- certificate's group, status or not_after appends a delta row in the change's own statement; a job folds
-- the deltas into the counts (and moves as_of) under a lock. A read is one statement, so it sees the
-- counts, the deltas and the certificates in one snapshot: exact at every moment.
-- group_name '' stands for "no group" (a real group name is never empty: core/group.ts GROUP_NAME).
CREATE TABLE certificate_counts (
  group_name text NOT NULL,
  bucket text NOT NULL CHECK (bucket IN ('expired', '7', '30', '90', 'later', 'revoked')),
  n bigint NOT NULL,
  PRIMARY KEY (group_name, bucket)
);

-- The instant the folded counts are relative to; no row until the first fold (then nothing is folded yet).
CREATE TABLE certificate_counts_as_of (
  one boolean PRIMARY KEY DEFAULT true CHECK (one),
  as_of timestamptz NOT NULL
);

-- Not yet folded: +1 for a (group, status, not_after) a certificate entered, -1 for one it left. Appended
-- only (no row is ever updated), so concurrent issuances never wait on each other here.
CREATE TABLE certificate_count_deltas (
  group_name text NOT NULL,
  status text NOT NULL,
  not_after timestamptz NOT NULL,
  delta integer NOT NULL
);

-- The names and the count deltas are maintained by the database itself, in the statement that stores or
-- changes a certificate: every writer (the batched ACME issuance, revocation, label edits, bulk loads) keeps
-- them exact without a transaction of its own or a step it could forget. Statement-level with a transition
-- table for inserts (one INSERT for a whole batch of certificates).
CREATE FUNCTION certificates_inventory_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO certificate_names (name_reversed, serial, not_after, created_at)
    SELECT DISTINCT reverse(lower(i.value ->> 'value')), s.serial, s.not_after, s.created_at
    FROM stored s CROSS JOIN LATERAL jsonb_array_elements(s.identifiers) AS i (value);
  INSERT INTO certificate_count_deltas (group_name, status, not_after, delta)
    SELECT coalesce(s.group_name, ''), s.status, s.not_after, 1 FROM stored s;
  RETURN NULL;
END $$;

CREATE TRIGGER certificates_inventory_inserted AFTER INSERT ON certificates
  REFERENCING NEW TABLE AS stored FOR EACH STATEMENT EXECUTE FUNCTION certificates_inventory_inserted();

CREATE FUNCTION certificates_inventory_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO certificate_count_deltas (group_name, status, not_after, delta) VALUES
    (coalesce(OLD.group_name, ''), OLD.status, OLD.not_after, -1),
    (coalesce(NEW.group_name, ''), NEW.status, NEW.not_after, 1);
  RETURN NULL;
END $$;

CREATE TRIGGER certificates_inventory_changed AFTER UPDATE ON certificates FOR EACH ROW
  WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.group_name IS DISTINCT FROM NEW.group_name OR OLD.not_after IS DISTINCT FROM NEW.not_after)
  EXECUTE FUNCTION certificates_inventory_changed();

-- The certificates stored before this migration: their names, and their counts as deltas (the first fold
-- takes them in; until then a read sums them, which is exact too).
INSERT INTO certificate_names (name_reversed, serial, not_after, created_at)
  SELECT DISTINCT reverse(lower(i.value ->> 'value')), c.serial, c.not_after, c.created_at
  FROM certificates c CROSS JOIN LATERAL jsonb_array_elements(c.identifiers) AS i (value);
INSERT INTO certificate_count_deltas (group_name, status, not_after, delta)
  SELECT coalesce(group_name, ''), status, not_after, 1 FROM certificates;
