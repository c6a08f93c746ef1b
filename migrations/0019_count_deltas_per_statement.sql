-- 0019_count_deltas_per_statement: the count deltas of a changed certificate are written once per statement.
-- Forward-only: once landed this file is never edited; changes go in a new numbered file.
-- Plain SQL and PL/pgSQL that run identically on PostgreSQL 15 and PGlite. No statement reads the server's
-- clock (DESIGN.md rule 4).
--
-- 0013 kept the counts exact on UPDATE with a row-level trigger: one PL/pgSQL call and one INSERT per
-- changed certificate. A bulk revocation changes a thousand certificates in one statement, and there the
-- trigger cost 34 ms of the statement's 134 (auto_explain in bench:revoke, 1,000 revocations per chunk).
-- Statement-level with both transition tables instead: every row as it was counts -1 and every row as it
-- is counts +1, summed per (group, status, notAfter), and only the sums that are not zero are appended.
-- No pairing of old and new rows is needed (a certificate whose group, status and notAfter did not change
-- cancels out, whatever else the statement changed), and a delta may now be more than one: the fold
-- (foldCertificateCounts) and the counts sum them, as they always did.
DROP TRIGGER certificates_inventory_changed ON certificates;
DROP FUNCTION certificates_inventory_changed();

CREATE FUNCTION certificates_inventory_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO certificate_count_deltas (group_name, status, not_after, delta)
    SELECT d.group_name, d.status, d.not_after, sum(d.delta)::integer
    FROM (
      SELECT coalesce(b.group_name, '') AS group_name, b.status, b.not_after, -1 AS delta FROM before b
      UNION ALL
      SELECT coalesce(a.group_name, ''), a.status, a.not_after, 1 FROM after a
    ) AS d
    GROUP BY d.group_name, d.status, d.not_after
    HAVING sum(d.delta) <> 0;
  RETURN NULL;
END $$;

CREATE TRIGGER certificates_inventory_updated AFTER UPDATE ON certificates
  REFERENCING OLD TABLE AS before NEW TABLE AS after FOR EACH STATEMENT EXECUTE FUNCTION certificates_inventory_updated();
