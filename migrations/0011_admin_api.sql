-- 0011_admin_api: what the admin API (/admin/v1) authenticates with and lists.
-- Forward-only: once landed this file is never edited; changes go in a new numbered file.
-- Every timestamp is written by the application from its Clock (DESIGN.md rule 4).

-- Admin API tokens. The token itself is shown once when created and never stored: only its SHA-256, which
-- the server compares in constant time after finding the row by `id` (the token's public part, also what
-- audit entries name: token:<id>). A token is never deleted, so what it did stays attributable.
CREATE TABLE admin_tokens (
  id text PRIMARY KEY,
  token_sha256 bytea NOT NULL CHECK (length(token_sha256) = 32),
  role text NOT NULL CHECK (role IN ('admin', 'group-admin', 'auditor')),
  -- JSON array of group names: the groups a group-admin acts on (empty for admin and auditor).
  groups jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(groups) = 'array'),
  description text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL,
  -- The actor that made it (cli:<user>, token:<id>, certificate:<name>).
  created_by text NOT NULL,
  expires_at timestamptz NOT NULL CHECK (expires_at > created_at),
  revoked_at timestamptz,
  revoked_by text,
  -- Written at most once a minute per token (a compare-and-set on this column), never per request.
  last_used_at timestamptz
);
-- The token list, oldest first, paged by (created_at, id) (DESIGN.md rule 9).
CREATE INDEX admin_tokens_created ON admin_tokens (created_at, id);

-- Operators who authenticate with a client certificate (the `operator` profile) on the admin listener, bound
-- to a role and groups by an admin. Keyed by the SHA-256 of the certificate's SubjectPublicKeyInfo: the key
-- is what the TLS handshake proves possession of, so renewing with the same key keeps the binding, a new key
-- needs a new one, and the certificate presented is checked on every request (ours, operator profile, valid).
CREATE TABLE admin_operators (
  spki_sha256 text PRIMARY KEY CHECK (spki_sha256 ~ '^[0-9a-f]{64}$'),
  -- Who the operator is, as audit entries name them: certificate:<name>.
  name text NOT NULL,
  role text NOT NULL CHECK (role IN ('admin', 'group-admin', 'auditor')),
  groups jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(groups) = 'array'),
  -- The certificate the binding was made from.
  serial text NOT NULL,
  created_at timestamptz NOT NULL,
  created_by text NOT NULL
);
CREATE INDEX admin_operators_created ON admin_operators (created_at, spki_sha256);

-- EAB credentials can be revoked (an unused key that leaked): a revoked one binds no account.
ALTER TABLE eab_credentials
  ADD COLUMN revoked_at timestamptz,
  ADD COLUMN revoked_by text;
CREATE INDEX eab_credentials_created ON eab_credentials (created_at, kid);

-- The admin lists, newest first, paged by keyset (DESIGN.md rule 9). A group's certificates use their own
-- index; a status filter reads the created_at one; `expiring` reads an index on not_after.
CREATE INDEX accounts_created ON accounts (created_at, id);
CREATE INDEX certificates_created ON certificates (created_at, serial);
CREATE INDEX certificates_group_created ON certificates (group_name, created_at, serial) WHERE group_name IS NOT NULL;
