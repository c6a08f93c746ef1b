-- 0003_crl: CRL numbers and the latest CRL of every issuer and shard (RFC 5280 §5).
-- Forward-only: once landed this file is never edited; changes go in a new numbered file.
-- Plain SQL that runs identically on PostgreSQL 15 and PGlite. Every timestamp is written by the
-- application from its Clock (DESIGN.md rule 4), so no column defaults to now().

-- RFC 5280 §5.2.3: the CRLNumber of one CRL scope (issuer + shard; the root has one CRL, shard 0) increases
-- monotonically and is never reused. It is allocated here with one INSERT ... ON CONFLICT DO UPDATE ...
-- RETURNING, so any number of instances sharing the database (rule 7) draw distinct, increasing numbers.
-- A row also records that a scope has been published: the publisher keeps regenerating every shard it
-- finds here even after CHANCERY_CRL_SHARDS shrinks, because certificates already point at those URLs.
CREATE TABLE crl_numbers (
  issuer_id text NOT NULL REFERENCES issuers (id),
  shard integer NOT NULL CHECK (shard >= 0),
  -- bigint: 2^63 is far below the 20 octets §5.2.3 allows, and unreachable at one CRL a second.
  last_number bigint NOT NULL CHECK (last_number >= 1),
  PRIMARY KEY (issuer_id, shard)
);

-- The latest signed CRL of each scope, so every instance serves the same bytes without regenerating. One
-- row per scope: storing a CRL replaces the row only when its number is higher, so a slow generation that
-- finishes after a newer one never goes back in time.
CREATE TABLE crls (
  issuer_id text NOT NULL,
  shard integer NOT NULL,
  number bigint NOT NULL CHECK (number >= 1),
  this_update timestamptz NOT NULL,
  next_update timestamptz NOT NULL CHECK (next_update > this_update),
  -- Number of revokedCertificates entries, for operators (the DER is the truth).
  entries integer NOT NULL CHECK (entries >= 0),
  -- Octets of the DER, checked against its parts when it is read back.
  size integer NOT NULL CHECK (size > 0),
  created_at timestamptz NOT NULL,
  PRIMARY KEY (issuer_id, shard),
  FOREIGN KEY (issuer_id, shard) REFERENCES crl_numbers (issuer_id, shard)
);

-- The DER of each scope's latest CRL in consecutive parts of at most 1 MiB: a million-entry CRL is ~50 MB,
-- and one bytea that size costs a copy of it in the driver to send and twice its size in hex text to read
-- back. Replaced together with the crls row, in one transaction; a reader joins both in one statement, so
-- it sees one CRL's parts, never a mix.
CREATE TABLE crl_parts (
  issuer_id text NOT NULL,
  shard integer NOT NULL,
  seq integer NOT NULL CHECK (seq >= 0),
  bytes bytea NOT NULL,
  PRIMARY KEY (issuer_id, shard, seq),
  FOREIGN KEY (issuer_id, shard) REFERENCES crls (issuer_id, shard)
);

-- Out of line, uncompressed: pglz-compressing 50 MB of DER on every store costs more than the rest of the
-- write, and every read would decompress it. Storage is cheap next to a CRL that is late.
ALTER TABLE crl_parts ALTER COLUMN bytes SET STORAGE EXTERNAL;

-- The CRL entry reader pages through one scope's revoked certificates by serial (keyset pagination, so a
-- million entries are read in bounded memory without OFFSET). Byte-order collation keeps the order and the
-- "serial > last" comparison cheap and identical on every server locale. INCLUDE makes the read an
-- index-only scan once the visibility map is set. 0001's certificates_revoked_by_shard serves lookups by
-- not_after, but not this order.
CREATE INDEX certificates_crl_entries
  ON certificates (issuer_id, crl_shard, serial COLLATE "C")
  INCLUDE (not_after, revoked_at, revocation_reason, invalidity_date)
  WHERE status = 'revoked';
