-- 0004_ocsp: OCSP (RFC 6960, RFC 5019 lightweight profile) — delegated responder certificates and the
-- pre-signed responses every instance serves.
-- Forward-only: once landed this file is never edited; changes go in a new numbered file.
-- Plain SQL that runs identically on PostgreSQL 15 and PGlite. Every timestamp is written by the
-- application from its Clock (DESIGN.md rule 4), so no column defaults to now(). Responses live here, not
-- in one process's memory, so any number of instances answer alike (rule 7); each instance's in-memory
-- cache is invalidated through LISTEN/NOTIFY on revocation.

-- Delegated OCSP responder certificates (RFC 6960 §4.2.2.2): issued by an intermediate's key, EKU
-- id-kp-OCSPSigning, id-pkix-ocsp-nocheck, short-lived and rotated before they expire. generation numbers
-- the responders of one issuer; the latest one signs. key_name is the KeyStore name (ocsp-<issuer>-<n>).
CREATE TABLE ocsp_responders (
  issuer_id text NOT NULL REFERENCES issuers (id),
  generation integer NOT NULL CHECK (generation >= 1),
  key_name text NOT NULL CONSTRAINT ocsp_responders_key_name_key UNIQUE,
  -- The responder certificate's serial, reserved in serials like every serial the issuer signs
  -- (CA/B BR 7.1, RFC 5280 §4.1.2.2).
  serial text NOT NULL,
  der bytea NOT NULL,
  not_before timestamptz NOT NULL,
  not_after timestamptz NOT NULL,
  created_at timestamptz NOT NULL,
  PRIMARY KEY (issuer_id, generation),
  FOREIGN KEY (serial, issuer_id) REFERENCES serials (serial, issuer_id),
  CHECK (not_after > not_before)
);

-- Pre-signed OCSP responses, one per issued certificate, signed at issuance, re-signed in the revocation's
-- transaction and refreshed before half their validity has passed. der is the complete OCSPResponse with a
-- SHA-1 CertID (RFC 5019 §2.1.1 makes SHA-1 the one every client can use). A revoked row may briefly have
-- no der: the revocation committed but signing failed, and the row then stops a stale `good` from being
-- written back (the responder signs live from the certificate until the refresher fills it in).
-- Only certificates Chancery issued have rows: `unknown` answers are never stored.
CREATE TABLE ocsp_responses (
  serial text PRIMARY KEY CONSTRAINT ocsp_responses_serial_fkey REFERENCES certificates (serial),
  issuer_id text NOT NULL REFERENCES issuers (id),
  status text NOT NULL CHECK (status IN ('good', 'revoked')),
  der bytea,
  this_update timestamptz NOT NULL,
  next_update timestamptz NOT NULL,
  -- When the refresher re-signs it: half way from this_update to next_update (RFC 5019 §6.2 practice),
  -- pushed forward by a lease while an instance works on it.
  refresh_after timestamptz NOT NULL,
  -- Which responder certificate signed it (the responder of issuer_id with this generation).
  responder_generation integer,
  updated_at timestamptz NOT NULL,
  CHECK (der IS NOT NULL OR status = 'revoked'),
  CHECK (next_update >= this_update)
);

-- The refresher's claim query: due rows in order.
CREATE INDEX ocsp_responses_refresh_after ON ocsp_responses (refresh_after);
