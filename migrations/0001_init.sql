-- 0001_init: CA certificates, CA key blobs, serials and issued certificates.
-- Forward-only: once landed this file is never edited; changes go in a new numbered file.
-- Plain SQL that runs identically on PostgreSQL 15 and PGlite. Every timestamp is written by the
-- application from its Clock (DESIGN.md rule 4), so no column defaults to now().

-- The root and the issuing intermediates. id is the short stable name used in URLs
-- (/ca/<id>.der, /crl/<id>/<shard>.crl), so it never changes once certificates point at it.
CREATE TABLE issuers (
  id text PRIMARY KEY,
  role text NOT NULL CHECK (role IN ('root', 'intermediate')),
  key_name text NOT NULL,
  parent_id text REFERENCES issuers (id),
  der bytea NOT NULL,
  subject text NOT NULL,
  not_before timestamptz NOT NULL,
  not_after timestamptz NOT NULL,
  created_at timestamptz NOT NULL,
  CHECK (role <> 'root' OR parent_id IS NULL)
);

-- At most one root: every chain Chancery serves ends in it (/ca/root.pem).
CREATE UNIQUE INDEX issuers_one_root ON issuers (role) WHERE role = 'root';

-- Encrypted PKCS#8 of the software KeyStore, shared by every instance on this database (rule 7).
CREATE TABLE key_blobs (
  name text PRIMARY KEY,
  algorithm text NOT NULL,
  encrypted_pkcs8 bytea NOT NULL,
  created_at timestamptz NOT NULL
);

-- A serial is recorded here before the certificate is signed (rule 2) and never deleted, so it is never
-- reused even when signing or storing fails (CA/B BR 7.1, RFC 5280 §4.1.2.2 uniqueness per issuer).
-- Lower-case hex, as in IssuedCertificate.serial.
CREATE TABLE serials (
  serial text PRIMARY KEY CHECK (serial ~ '^[0-9a-f]+$'),
  issuer_id text NOT NULL REFERENCES issuers (id),
  created_at timestamptz NOT NULL,
  -- Target of the certificates foreign key below, which ties a certificate to the issuer its serial was
  -- reserved for.
  UNIQUE (serial, issuer_id)
);

CREATE TABLE certificates (
  serial text PRIMARY KEY,
  issuer_id text NOT NULL REFERENCES issuers (id),
  crl_shard integer NOT NULL CHECK (crl_shard >= 0),
  der bytea NOT NULL,
  -- JSON array of {"type": "dns" | "ip", "value": "..."}: type and value both survive, and inventory can
  -- search inside it.
  identifiers jsonb NOT NULL CHECK (jsonb_typeof(identifiers) = 'array'),
  spki_sha256 text NOT NULL CHECK (spki_sha256 ~ '^[0-9a-f]{64}$'),
  not_before timestamptz NOT NULL,
  not_after timestamptz NOT NULL,
  status text NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revoked')),
  revoked_at timestamptz,
  -- RFC 5280 §5.3.1 CRLReason; 7 is unused in the standard.
  revocation_reason smallint CHECK (revocation_reason IN (0, 1, 2, 3, 4, 5, 6, 8, 9, 10)),
  invalidity_date timestamptz,
  created_at timestamptz NOT NULL,
  FOREIGN KEY (serial, issuer_id) REFERENCES serials (serial, issuer_id),
  CHECK (
    (status = 'valid' AND revoked_at IS NULL AND revocation_reason IS NULL AND invalidity_date IS NULL)
    OR (status = 'revoked' AND revoked_at IS NOT NULL AND revocation_reason IS NOT NULL)
  )
);

-- CRL generation (RFC 5280 §5.1.2.6): the revoked certificates of one issuer and shard. not_after lets the
-- publisher drop entries of certificates that have expired.
CREATE INDEX certificates_revoked_by_shard ON certificates (issuer_id, crl_shard, not_after) WHERE status = 'revoked';

-- Expiry scans and renewal health across the estate.
CREATE INDEX certificates_not_after ON certificates (not_after);

-- Per-issuer inventory (counts, expiry by issuer).
CREATE INDEX certificates_issuer_not_after ON certificates (issuer_id, not_after);

-- "Which certificates carry this key?" for key-compromise revocation (RFC 8555 §7.6, CA/B BR 4.9.12).
CREATE INDEX certificates_spki_sha256 ON certificates (spki_sha256);
