-- 0018_certificate_labels: label=key:value searches walk an index in sort order and stop at the page.
-- Forward-only: once landed this file is never edited; changes go in a new numbered file.
-- Plain SQL and PL/pgSQL that run identically on PostgreSQL 15 and PGlite. No statement reads the server's
-- clock (DESIGN.md rule 4).
--
-- A label was a jsonb containment (labels @> '{"key": "value"}') on the GIN index certificates_labels. The
-- planner cannot estimate a label's selectivity there (it assumes 1 %), and a GIN index has no order: at 10M
-- certificates a label matching 0.05 % was walked in sort order through certificates_created, reading
-- ~200,000 rows for a page (p99 1.9 s), and one matching 0.5 % was found through the GIN bitmap and then
-- sorted, 50,000 heap rows a page (p99 526 ms; docs/benchmarks.md, "Inventory at ten million certificates").
--
-- certificate_labels holds one row per (certificate, label key, label value) with both sort keys, so a
-- label's certificates are a contiguous range of (key, value, not_after, serial) or (key, value, created_at,
-- serial), in sort order: a page reads as many index entries as it needs and no more, as certificate_names
-- does for names. The group rides along (INCLUDE) so that a group-admin's scope is checked on the index
-- entry, before any certificate row is read; so does the other sort key, for the validity and issuance
-- bounds. Only text values are labels (src/policy/labels.ts): a value of another JSON type is never matched
-- by a `label` filter and is not here.
--
-- A revoked certificate's labels are there twice: the rows it got when stored (revoked false, never changed
-- by a revocation) and the same again with revoked true, added by the revocation. Each kind has its own
-- partial indexes, so `status=revoked` walks the revoked rows only (2 % of an estate: 50 entries read per
-- certificate found otherwise) and every other search the others, each certificate once. A revocation only
-- appends a few rows to small indexes. Carrying a revoked flag in the main indexes instead made every
-- revocation rewrite its certificate's rows in both (non-HOT updates: ten index entries for five labels).
-- Revoking 20,000 labelled certificates of the 200,000-row bench estate in one statement (load average
-- 8-11): 4.7-6.7 s without any label trigger, 14.3 s rewriting the flagged rows, 6.9-7.0 s appending.
CREATE TABLE certificate_labels (
  not_after timestamptz NOT NULL,
  created_at timestamptz NOT NULL,
  key text COLLATE "C" NOT NULL,
  value text COLLATE "C" NOT NULL,
  serial text NOT NULL,
  group_name text,
  revoked boolean NOT NULL
);

-- The rows of a certificate (`revoked` false), and of its revocation (true): labels' text values only.
CREATE FUNCTION certificate_labels_of(labels jsonb, serial text, not_after timestamptz, created_at timestamptz, group_name text, revoked boolean)
  RETURNS SETOF certificate_labels LANGUAGE sql IMMUTABLE AS $$
  SELECT not_after, created_at, e.key, e.value #>> '{}', serial, group_name, revoked
  FROM jsonb_each(labels) AS e (key, value)
  WHERE jsonb_typeof(e.value) = 'string'
$$;

-- Deletes the rows of a certificate's labels of one kind. One statement per label, every column of the
-- partial indexes' keys an equality and the predicate of one of them, so the plan is an exact lookup
-- whatever the statistics. A join with the labels was planned, on a table without statistics, as a walk of a whole
-- index (with a condition on serial and a sort key only), and a condition on not_after alone as a walk of
-- the (key, value) range of certificate_labels_created: millions of entries per edit of an env=prod label
-- at 10M.
CREATE FUNCTION certificate_labels_forget(labels jsonb, serial text, not_after timestamptz, created_at timestamptz, revoked boolean) RETURNS void
  LANGUAGE plpgsql AS $$
DECLARE
  pair record;
BEGIN
  FOR pair IN SELECT e.key, e.value FROM jsonb_each_text(labels) AS e (key, value) LOOP
    IF revoked THEN
      DELETE FROM certificate_labels l
        WHERE l.key = pair.key AND l.value = pair.value AND l.not_after = certificate_labels_forget.not_after
          AND l.created_at = certificate_labels_forget.created_at AND l.serial = certificate_labels_forget.serial
          AND l.revoked AND l.not_after > '-infinity';
    ELSE
      DELETE FROM certificate_labels l
        WHERE l.key = pair.key AND l.value = pair.value AND l.not_after = certificate_labels_forget.not_after
          AND l.created_at = certificate_labels_forget.created_at AND l.serial = certificate_labels_forget.serial
          AND NOT l.revoked AND l.not_after > '-infinity';
    END IF;
  END LOOP;
END $$;

-- Kept by the database in the statement that stores or changes a certificate (as certificate_names and the
-- count deltas are, 0013): every writer (the batched ACME issuance, label edits, revocation one by one or in
-- bulk, loads) keeps the table exact without a step it could forget. Inserts: statement-level with the
-- transition table (one INSERT for a whole batch of certificates).
CREATE FUNCTION certificates_labels_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO certificate_labels (not_after, created_at, key, value, serial, group_name, revoked)
    SELECT r.* FROM stored s CROSS JOIN LATERAL certificate_labels_of(s.labels, s.serial, s.not_after, s.created_at, s.group_name, false) AS r
    UNION ALL
    SELECT r.* FROM stored s CROSS JOIN LATERAL certificate_labels_of(s.labels, s.serial, s.not_after, s.created_at, s.group_name, true) AS r
    WHERE s.status = 'revoked';
  RETURN NULL;
END $$;

CREATE TRIGGER certificates_labels_inserted AFTER INSERT ON certificates
  REFERENCING NEW TABLE AS stored FOR EACH STATEMENT EXECUTE FUNCTION certificates_labels_inserted();

-- Changes. A revocation adds the revoked rows (and taking one back, which no writer does, removes them);
-- any other change (a label edit through the admin API, which replaces the whole set) rewrites them all.
-- Row-level with a WHEN, so an UPDATE that changes none of these costs nothing here.
CREATE FUNCTION certificates_labels_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  was_revoked boolean := OLD.status = 'revoked';
  is_revoked boolean := NEW.status = 'revoked';
BEGIN
  IF OLD.labels IS DISTINCT FROM NEW.labels OR OLD.not_after IS DISTINCT FROM NEW.not_after OR OLD.created_at IS DISTINCT FROM NEW.created_at
     OR OLD.group_name IS DISTINCT FROM NEW.group_name OR OLD.serial IS DISTINCT FROM NEW.serial THEN
    PERFORM certificate_labels_forget(OLD.labels, OLD.serial, OLD.not_after, OLD.created_at, false);
    IF was_revoked THEN
      PERFORM certificate_labels_forget(OLD.labels, OLD.serial, OLD.not_after, OLD.created_at, true);
    END IF;
    INSERT INTO certificate_labels (not_after, created_at, key, value, serial, group_name, revoked)
      SELECT * FROM certificate_labels_of(NEW.labels, NEW.serial, NEW.not_after, NEW.created_at, NEW.group_name, false);
  ELSIF was_revoked AND NOT is_revoked THEN
    PERFORM certificate_labels_forget(OLD.labels, OLD.serial, OLD.not_after, OLD.created_at, true);
    RETURN NULL;
  ELSIF was_revoked THEN
    RETURN NULL;
  END IF;
  IF is_revoked THEN
    INSERT INTO certificate_labels (not_after, created_at, key, value, serial, group_name, revoked)
      SELECT * FROM certificate_labels_of(NEW.labels, NEW.serial, NEW.not_after, NEW.created_at, NEW.group_name, true);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER certificates_labels_changed AFTER UPDATE ON certificates FOR EACH ROW
  WHEN ((OLD.labels IS NOT NULL OR NEW.labels IS NOT NULL) AND (OLD.labels IS DISTINCT FROM NEW.labels OR OLD.status IS DISTINCT FROM NEW.status
    OR OLD.not_after IS DISTINCT FROM NEW.not_after OR OLD.created_at IS DISTINCT FROM NEW.created_at OR OLD.group_name IS DISTINCT FROM NEW.group_name
    OR OLD.serial IS DISTINCT FROM NEW.serial))
  EXECUTE FUNCTION certificates_labels_changed();

CREATE FUNCTION certificates_labels_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM certificate_labels_forget(OLD.labels, OLD.serial, OLD.not_after, OLD.created_at, false);
  IF OLD.status = 'revoked' THEN
    PERFORM certificate_labels_forget(OLD.labels, OLD.serial, OLD.not_after, OLD.created_at, true);
  END IF;
  RETURN NULL;
END $$;

-- No writer deletes certificates; one that did must not leave a label behind that a search would join to
-- nothing.
CREATE TRIGGER certificates_labels_deleted AFTER DELETE ON certificates FOR EACH ROW
  WHEN (OLD.labels IS NOT NULL)
  EXECUTE FUNCTION certificates_labels_deleted();

-- The certificates stored before this migration (after the triggers: CREATE TRIGGER locks certificates
-- against writers until this transaction commits, so no certificate is stored between this read and the
-- triggers taking over). The indexes are built after the rows, at once.
INSERT INTO certificate_labels (not_after, created_at, key, value, serial, group_name, revoked)
  SELECT r.* FROM certificates c CROSS JOIN LATERAL certificate_labels_of(c.labels, c.serial, c.not_after, c.created_at, c.group_name, false) AS r
  WHERE c.labels IS NOT NULL
  UNION ALL
  SELECT r.* FROM certificates c CROSS JOIN LATERAL certificate_labels_of(c.labels, c.serial, c.not_after, c.created_at, c.group_name, true) AS r
  WHERE c.labels IS NOT NULL AND c.status = 'revoked';

-- A label's certificates soonest-expiring first (or last), and newest first (or oldest); then the same for
-- its revoked ones. COLLATE "C" (the table's): key and value are only ever compared for equality, and
-- bytewise comparison is the cheapest.
--
-- `not_after > '-infinity'` and `created_at > '-infinity'` hold for every row (X.509 times are real dates);
-- they are there so that each statement names the one index it walks or probes, by repeating its
-- predicate. Without them, the lookup of one certificate's label by (key, value, not_after, serial) costs
-- the same as a walk of certificate_labels_created's (key, value) range with serial as a filter whenever
-- the table is small or never analyzed (both estimates are one row), the planner took the latter, and a
-- connection keeps such a plan as the table grows (pg-database.ts runs statements as prepared ones): every
-- lookup would read all of env:prod's entries at 10M.
CREATE INDEX certificate_labels_not_after ON certificate_labels (key, value, not_after, serial) INCLUDE (created_at, group_name)
  WHERE NOT revoked AND not_after > '-infinity';
CREATE INDEX certificate_labels_created ON certificate_labels (key, value, created_at, serial) INCLUDE (not_after, group_name)
  WHERE NOT revoked AND created_at > '-infinity';
CREATE INDEX certificate_labels_revoked_not_after ON certificate_labels (key, value, not_after, serial) INCLUDE (created_at, group_name)
  WHERE revoked AND not_after > '-infinity';
CREATE INDEX certificate_labels_revoked_created ON certificate_labels (key, value, created_at, serial) INCLUDE (not_after, group_name)
  WHERE revoked AND created_at > '-infinity';

-- Nothing reads labels through the GIN index any more (a label is found through certificate_labels, a
-- further label is checked on the index too or on the row met): it would only cost every issuance its
-- upkeep.
DROP INDEX certificates_labels;
