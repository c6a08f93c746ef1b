-- 0007_profiles: certificate profiles (draft-ietf-acme-profiles). An order names the profile it was
-- requested with; a certificate records the profile it was issued under and whether its revocation is
-- published (RFC 9608: a short-lived certificate carries noRevAvail and is on no CRL and answered by no
-- OCSP responder).
-- Forward-only: once landed this file is never edited; changes go in a new numbered file.

-- Orders placed before profiles existed were issued under what is now the default profile.
ALTER TABLE orders ADD COLUMN profile text NOT NULL DEFAULT 'tls-server';
ALTER TABLE certificates ADD COLUMN profile text NOT NULL DEFAULT 'tls-server';
-- true for noRevAvail certificates: their revocation is recorded, never published.
ALTER TABLE certificates ADD COLUMN no_rev_avail boolean NOT NULL DEFAULT false;

-- The CRL readers' indexes (0001, 0003) cover only what a CRL may list: revoked and published. Same columns,
-- same order, so the entry reader stays an index-only scan.
CREATE INDEX certificates_published_revoked_by_shard ON certificates (issuer_id, crl_shard, not_after)
  WHERE status = 'revoked' AND NOT no_rev_avail;
DROP INDEX certificates_revoked_by_shard;
CREATE INDEX certificates_published_crl_entries
  ON certificates (issuer_id, crl_shard, serial COLLATE "C")
  INCLUDE (not_after, revoked_at, revocation_reason, invalidity_date)
  WHERE status = 'revoked' AND NOT no_rev_avail;
DROP INDEX certificates_crl_entries;
