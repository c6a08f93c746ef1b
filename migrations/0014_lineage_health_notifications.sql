-- 0014_lineage_health_notifications: what the inventory needs to know every machine identity over time:
-- each certificate's predecessor (lineage), the subject keys in use, when each ACME account was last seen,
-- and the webhooks and durable outbox that tell owners when a certificate is not being renewed.
-- Forward-only: once landed this file is never edited; changes go in a new numbered file.
-- Plain SQL and PL/pgSQL that run identically on PostgreSQL 15 and PGlite. No statement reads the server's
-- clock (DESIGN.md rule 4): every "now" is a parameter written by the application, or derived from stored
-- columns.

-- ---- lineage ----------------------------------------------------------------------------------------------

-- The identifier set of a certificate as one comparable value: the SHA-256 of its sorted "type:value" pairs,
-- so a certificate with a hundred long names still fits in a b-tree entry. A pure function of its argument
-- in a UTF-8 database.
CREATE FUNCTION certificate_identifier_set(identifiers jsonb) RETURNS bytea
  LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
  AS $$
BEGIN
  RETURN sha256(convert_to(coalesce(
    (SELECT string_agg(i.pair, E'\n' ORDER BY i.pair)
     FROM (SELECT (e ->> 'type') || ':' || (e ->> 'value') AS pair FROM jsonb_array_elements(identifiers) AS e) AS i), ''), 'UTF8'));
END $$;

-- The end of a certificate's ARI window (RFC 9773 §4.2, src/ra/renewal-info.ts: the middle third of the
-- validity): two thirds of the way from notBefore to notAfter. A client renewing on time has a successor by
-- then; a certificate past it without one is "renewal overdue". Computed on seconds only, so the result
-- never depends on the session's time zone (adding "N days" would move across a DST change). PL/pgSQL: the
-- index below computes it for every certificate stored, and PL/pgSQL keeps the compiled expression for the
-- session where a SQL function would be planned again by every statement.
CREATE FUNCTION certificate_renewal_due(not_before timestamptz, not_after timestamptz) RETURNS timestamptz
  LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
  AS $$
BEGIN
  RETURN not_before + make_interval(secs => (extract(epoch FROM not_after - not_before) * 2 / 3)::double precision);
END $$;

-- The certificate this one renews: the one it `replaces` (RFC 9773 §5), or else the newest earlier
-- certificate of the same account for the same identifier set (certificates issued outside ACME, with no
-- account, chain among themselves: the ACME listener's own certificate renews that way). Set once, when the
-- certificate is stored; never changed. No foreign key: it is always a row that exists when it is set.
-- identifier_set is stored (computed once, when the certificate is stored) rather than indexed as an
-- expression, which would compute it twice per certificate stored: once for the index, once for the lookup.
ALTER TABLE certificates ADD COLUMN identifier_set bytea, ADD COLUMN predecessor_serial text;
UPDATE certificates SET identifier_set = certificate_identifier_set(identifiers);
ALTER TABLE certificates ALTER COLUMN identifier_set SET NOT NULL;

-- The predecessor lookup: the newest certificate of an account for an identifier set.
CREATE INDEX certificates_lineage ON certificates (coalesce(account_id, ''), identifier_set, created_at DESC, serial DESC);
-- The successor lookup (and "has no successor", which renewal health asks of every certificate it reports).
CREATE INDEX certificates_successor ON certificates (predecessor_serial, created_at, serial) WHERE predecessor_serial IS NOT NULL;
-- Certificates by the end of their ARI window: the health detector walks the ones whose window has just
-- closed.
CREATE INDEX certificates_renewal_due ON certificates (certificate_renewal_due(not_before, not_after), serial) WHERE status = 'valid';

-- Recorded by the database in the certificate's own statement, for every writer (the batched ACME issuance,
-- the plain insert, bulk loads): no extra round trip on the issuance path and no writer that could forget.
-- A writer that already knows the predecessor (a bulk load) sets it and the lookup is skipped. Row-level
-- BEFORE: a batch that stores two certificates of one lineage links the second to the first (queries in a
-- BEFORE trigger see the rows the statement stored before this one).
CREATE FUNCTION certificates_record_predecessor() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.identifier_set := certificate_identifier_set(NEW.identifiers);
  IF NEW.predecessor_serial IS NULL THEN
    NEW.predecessor_serial := coalesce(NEW.replaces_serial, (
      SELECT p.serial FROM certificates p
      WHERE coalesce(p.account_id, '') = coalesce(NEW.account_id, '') AND p.identifier_set = NEW.identifier_set
      ORDER BY p.created_at DESC, p.serial DESC
      LIMIT 1));
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER certificates_record_predecessor BEFORE INSERT ON certificates
  FOR EACH ROW EXECUTE FUNCTION certificates_record_predecessor();

-- The certificates stored before this migration, linked the same way.
UPDATE certificates c SET predecessor_serial = l.predecessor
FROM (
  SELECT serial, coalesce(replaces_serial, lag(serial) OVER (
    PARTITION BY coalesce(account_id, ''), identifier_set ORDER BY created_at, serial)) AS predecessor
  FROM certificates
) AS l
WHERE c.serial = l.serial AND l.predecessor IS NOT NULL;

-- ---- accounts: last seen ----------------------------------------------------------------------------------

-- When the account last authenticated an ACME request, to the hour: written at most once an hour per
-- account, in batches (src/inventory/account-activity.ts), never once per request.
ALTER TABLE accounts ADD COLUMN last_seen_at timestamptz;
-- Accounts from before this migration: their newest order is the last time they are known to have been seen.
UPDATE accounts a SET last_seen_at = o.at
FROM (SELECT account_id, max(created_at) AS at FROM orders GROUP BY account_id) AS o
WHERE o.account_id = a.id;
-- "Accounts not seen for N days", oldest first; an account never seen counts from its creation.
CREATE INDEX accounts_not_seen ON accounts ((coalesce(last_seen_at, created_at)), id) WHERE status = 'valid';

-- ---- subject keys -----------------------------------------------------------------------------------------

-- Every subject key certified, by the SHA-256 of its SubjectPublicKeyInfo, with what the key policy judges
-- (family and size) and whether it has been certified for more than one account or group. Kept by the
-- inventory.keys job, which reads new certificates in (created_at, serial) order; every column is written so
-- that reading a certificate twice changes nothing.
CREATE TABLE subject_keys (
  spki_sha256 text PRIMARY KEY CHECK (spki_sha256 ~ '^[0-9a-f]{64}$'),
  -- What the weak-key report groups by: rsa/<bits>/<exponent>, ec/<curve>, ed25519 or other/<type>.
  kind text NOT NULL,
  first_serial text NOT NULL,
  first_account_id text,
  first_group text,
  shared_accounts boolean NOT NULL,
  shared_groups boolean NOT NULL,
  -- The latest notAfter of its certificates: a key whose certificates have all expired is no longer in use.
  last_not_after timestamptz NOT NULL,
  first_seen_at timestamptz NOT NULL
);
CREATE INDEX subject_keys_kind ON subject_keys (kind, spki_sha256);
CREATE INDEX subject_keys_shared ON subject_keys (spki_sha256) WHERE shared_accounts OR shared_groups;

-- Where a job that walks a table in key order has got to (the inventory.keys job: certificates by
-- (created_at, serial)).
CREATE TABLE inventory_cursors (
  name text PRIMARY KEY,
  at timestamptz NOT NULL,
  serial text NOT NULL
);

-- ---- notifications ----------------------------------------------------------------------------------------

-- Webhooks: a group's (its certificates only) or global (group_name NULL: every certificate). The HMAC
-- secret is shown once, when the webhook is created, and stored sealed under the installation passphrase
-- (src/keys/secret-box.ts), bound to the webhook's id. No foreign key to groups: a webhook is history, and a
-- group that is removed must not be held back by one (its webhook simply matches nothing more).
CREATE TABLE webhooks (
  id text PRIMARY KEY,
  group_name text,
  url text NOT NULL,
  secret_sealed bytea NOT NULL,
  -- JSON array of the event types it receives (renewal-overdue, expiring-soon, expired-unreplaced).
  events jsonb NOT NULL CHECK (jsonb_typeof(events) = 'array'),
  description text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL,
  created_by text NOT NULL,
  removed_at timestamptz,
  removed_by text
);
CREATE INDEX webhooks_created ON webhooks (created_at, id);

-- The outbox: one event per certificate per condition, written in the transaction that detects it together
-- with one delivery per webhook that receives it, so a crash loses nothing. The body is stored as sent:
-- every attempt of every delivery sends the same bytes and the same event id.
CREATE TABLE notification_events (
  id text PRIMARY KEY,
  type text NOT NULL CHECK (type IN ('renewal-overdue', 'expiring-soon', 'expired-unreplaced')),
  serial text NOT NULL,
  group_name text,
  account_id text,
  not_after timestamptz NOT NULL,
  body text NOT NULL,
  created_at timestamptz NOT NULL,
  CONSTRAINT notification_events_once UNIQUE (serial, type)
);
-- The health report reads the certificates in each condition by notAfter (src/inventory/health-report.ts).
CREATE INDEX notification_events_type_not_after ON notification_events (type, not_after, serial);

CREATE TABLE notification_deliveries (
  event_id text NOT NULL REFERENCES notification_events (id) ON DELETE CASCADE,
  webhook_id text NOT NULL REFERENCES webhooks (id),
  -- pending: to be (re)tried at next_attempt_at; delivered: a 2xx answer; failed: no 2xx in 10 attempts, or
  -- the webhook was removed.
  status text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at timestamptz,
  last_attempt_at timestamptz,
  -- What went wrong last (an HTTP status or a connection failure; never a secret).
  last_error text,
  delivered_at timestamptz,
  created_at timestamptz NOT NULL,
  PRIMARY KEY (event_id, webhook_id),
  CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
);
-- The delivery job: pending deliveries by due time.
CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at, event_id, webhook_id) WHERE status = 'pending';
-- A webhook's deliveries, newest first (the admin list), paged by keyset.
CREATE INDEX notification_deliveries_webhook ON notification_deliveries (webhook_id, created_at DESC, event_id DESC);

-- How far the health detector has looked, per scan: `renewal-due` (the end of the ARI window: renewal-overdue
-- and expiring-soon) and `expiry` (notAfter: expired-unreplaced).
CREATE TABLE notification_watermarks (
  scan text PRIMARY KEY CHECK (scan IN ('renewal-due', 'expiry')),
  through timestamptz NOT NULL
);
