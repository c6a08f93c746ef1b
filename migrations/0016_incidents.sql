-- 0016_incidents: incident response — declared incidents with the certificates they cover, the subject keys
-- they block, the renewals they refused; and bulk revocation runs, planned before the first certificate is
-- revoked and resumed from their cursor after a crash (src/revocation/bulk-revoker.ts).
-- Forward-only: once landed this file is never edited; changes go in a new numbered file.
-- Plain SQL that runs identically on PostgreSQL 15 and PGlite. No statement reads the server's clock
-- (DESIGN.md rule 4): every instant is a parameter written by the application.

-- ---- bulk revocation ----------------------------------------------------------------------------------------

-- A run: what it revokes is written down (bulk_revocation_items) in the transaction that creates it, then
-- revoked chunk by chunk in serial order; each chunk's transaction revokes, re-signs the OCSP responses,
-- records the audit entry and moves `cursor`, so after a crash the run goes on after the last chunk that
-- committed. `token` is the highest job-lease fencing token (src/core/jobs.ts) that worked on the run: a
-- chunk carrying a lower one is refused, so an instance that lost its lease cannot revoke a chunk the new
-- holder already did. `origin` is unique: whoever plans the same revocation twice finds the first run.
CREATE TABLE bulk_revocations (
  id text PRIMARY KEY,
  origin text NOT NULL,
  label text NOT NULL,
  reason smallint NOT NULL,
  invalidity_date timestamptz,
  actor text NOT NULL,
  state text NOT NULL CHECK (state IN ('running', 'publishing', 'done')),
  total integer NOT NULL,
  short_lived integer NOT NULL,
  short_lived_until timestamptz,
  unknown integer NOT NULL,
  cursor text COLLATE "C",
  revoked integer NOT NULL DEFAULT 0,
  skipped integer NOT NULL DEFAULT 0,
  chunks integer NOT NULL DEFAULT 0,
  -- The CRL scopes (issuer, shard) revoked in so far: a JSON array of [issuer, shard] pairs.
  scopes jsonb NOT NULL DEFAULT '[]',
  token bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL,
  finished_at timestamptz,
  published_at timestamptz,
  CONSTRAINT bulk_revocations_origin UNIQUE (origin)
);
-- The job's work list: runs not done, oldest first.
CREATE INDEX bulk_revocations_pending ON bulk_revocations (created_at, id) WHERE state <> 'done';

-- The serials of a run, in the bytewise order chunks walk (COLLATE "C": the same order in every database and
-- in JavaScript's string comparison, which the OCSP cache's range invalidation relies on). Short-lived
-- (noRevAvail, RFC 9608) certificates are listed to be reported, never revoked.
CREATE TABLE bulk_revocation_items (
  run_id text NOT NULL REFERENCES bulk_revocations (id),
  serial text COLLATE "C" NOT NULL,
  short_lived boolean NOT NULL,
  not_after timestamptz NOT NULL,
  PRIMARY KEY (run_id, serial)
);
-- "Is this certificate in a run not yet done?" (an incident's sweep must not plan it twice).
CREATE INDEX bulk_revocation_items_serial ON bulk_revocation_items (serial);

-- ---- incidents ----------------------------------------------------------------------------------------------

CREATE TABLE incidents (
  id text PRIMARY KEY,
  name text NOT NULL,
  reason smallint NOT NULL,
  revoke_mode text NOT NULL CHECK (revoke_mode IN ('when-replaced', 'at-deadline', 'now')),
  drill boolean NOT NULL,
  renew_by timestamptz NOT NULL,
  explanation_url text,
  -- How the certificates were chosen (a filter's parameters, a serials file's size, a key's SHA-256).
  selection jsonb NOT NULL,
  affected integer NOT NULL,
  short_lived integer NOT NULL,
  blocked_keys integer NOT NULL,
  declared_at timestamptz NOT NULL,
  declared_by text NOT NULL,
  closed_at timestamptz,
  closed_by text,
  -- When the owners' notifications went into the outbox (the incidents.sweep job puts them there once).
  notified_at timestamptz,
  CONSTRAINT incidents_name UNIQUE (name)
);
-- The list, newest first (keyset on (declared_at, id), DESIGN.md rule 9); the open ones, which every
-- instance holds in memory.
CREATE INDEX incidents_declared ON incidents (declared_at, id);
CREATE INDEX incidents_open ON incidents (declared_at, id) WHERE closed_at IS NULL;

-- The certificates an incident covers, frozen when it is declared (valid then). The group and issuer are
-- copied so status reads one table; `replaced_by` is the first certificate issued to replace it (RFC 9773
-- `replaces`, or its lineage successor), recorded when that one is issued.
CREATE TABLE incident_certificates (
  incident_id text NOT NULL REFERENCES incidents (id),
  serial text COLLATE "C" NOT NULL,
  group_name text NOT NULL,
  issuer_id text NOT NULL,
  not_after timestamptz NOT NULL,
  short_lived boolean NOT NULL,
  replaced_by text,
  replaced_at timestamptz,
  PRIMARY KEY (incident_id, serial)
);
-- renewalInfo and the replacement hook find a certificate's incidents by its serial.
CREATE INDEX incident_certificates_serial ON incident_certificates (serial);
-- Replaced but not yet revoked (when-replaced), and the replacement curve.
CREATE INDEX incident_certificates_replaced ON incident_certificates (incident_id, replaced_at) WHERE replaced_at IS NOT NULL;

-- Subject keys refused for new certificates and as ACME account keys (keyCompromise; CA/B BR 6.1.1.3),
-- by the SHA-256 of their SubjectPublicKeyInfo. They stay blocked after the incident is closed: a
-- compromised key does not become safe again.
CREATE TABLE incident_blocked_keys (
  spki_sha256 text NOT NULL CHECK (spki_sha256 ~ '^[0-9a-f]{64}$'),
  incident_id text NOT NULL REFERENCES incidents (id),
  PRIMARY KEY (spki_sha256, incident_id)
);
CREATE INDEX incident_blocked_keys_incident ON incident_blocked_keys (incident_id);

-- Renewals refused because they presented a blocked key: counted per incident, and in the time series.
CREATE TABLE incident_blocks (
  incident_id text NOT NULL REFERENCES incidents (id),
  at timestamptz NOT NULL,
  kind text NOT NULL CHECK (kind IN ('csr', 'account-key')),
  spki_sha256 text NOT NULL,
  account_id text,
  group_name text NOT NULL
);
CREATE INDEX incident_blocks_incident ON incident_blocks (incident_id, at);

-- Owners hear of an incident through the notification outbox (migration 0014), one event per affected
-- certificate like its other conditions: its type joins theirs.
ALTER TABLE notification_events DROP CONSTRAINT notification_events_type_check;
ALTER TABLE notification_events ADD CONSTRAINT notification_events_type_check
  CHECK (type IN ('renewal-overdue', 'expiring-soon', 'expired-unreplaced', 'incident-declared'));
