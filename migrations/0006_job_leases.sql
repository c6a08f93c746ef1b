-- 0006_job_leases: leases that let a named periodic job (CRL regeneration, OCSP refresh, validation retries,
-- nonce purge) run on at most one instance at a time.
-- Forward-only: once landed this file is never edited; changes go in a new numbered file.
-- Plain SQL that runs identically on PostgreSQL 15 and PGlite. Every timestamp is written by the
-- application from its Clock (DESIGN.md rule 4), so no column defaults to now().

-- One row per job name, created by the first acquisition and never deleted: the row carries the fencing
-- token, which must keep increasing across releases (src/db/repositories/lease-repository.ts). Any number of
-- instances share the database (rule 7); whichever takes the row holds the job until expires_at, and keeps
-- it by renewing well before then. A holder that dies simply stops renewing, so another instance takes the
-- job over within one lease. A released lease has expires_at = '-infinity': free to anyone at once.
CREATE TABLE job_leases (
  name text PRIMARY KEY,
  -- The instance that holds (or last held) the lease: a per-process id chosen by the caller.
  holder text NOT NULL CHECK (holder <> ''),
  -- Incremented on every acquisition (also a holder's own re-acquisition), so work done under an older
  -- token can be told from work done under the current one.
  token bigint NOT NULL CHECK (token >= 1),
  acquired_at timestamptz,
  -- Null until the holder first renews after acquiring.
  renewed_at timestamptz,
  expires_at timestamptz NOT NULL
);
