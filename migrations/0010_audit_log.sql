-- 0010_audit_log: the audit log (DESIGN.md rule 8): every change's entry, the hash chain that seals the
-- entries, and the signed checkpoints of the chain's head (src/inventory/audit-log.ts).
-- Forward-only: once landed this file is never edited; changes go in a new numbered file.
-- Plain SQL that runs identically on PostgreSQL 15 and PGlite. Every timestamp is written by the
-- application from its Clock (DESIGN.md rule 4). Nothing here is ever deleted by retention.
--
-- Why three tables: an entry is appended, unhashed, in the statement or transaction of the change it
-- records, by any instance, concurrently; hashing it there would need the previous entry's hash, a single
-- locked chain head every issuance would queue on. Instead the one instance holding the `audit.seal` job
-- lease takes the committed entries waiting in audit_unsealed and links them into audit_chain in id order,
-- each chain position carrying the SHA-256 of the one before. An entry committed late (a lower id than one
-- already sealed) simply takes the next position when it becomes visible: nothing is ever skipped, and no
-- transaction ids or snapshots are needed to prove it.

CREATE TABLE audit_entries (
  -- Insertion order across instances (gaps are transactions that rolled back); the cursor of every list.
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at timestamptz NOT NULL,
  -- account:<id>, cli:<user>, token:<id>, ... (src/core/audit.ts Actor)
  actor text NOT NULL CHECK (actor <> ''),
  -- <noun>.<verb>: certificate.issue, account.deactivate, ...
  action text NOT NULL CHECK (action <> ''),
  -- <noun>:<id>: certificate:<serial>, account:<id>, ...
  subject text NOT NULL,
  outcome text NOT NULL CHECK (outcome IN ('ok', 'refused')),
  request_id text,
  -- The group (department) the subject belongs to, when it has one: what a group's administrator may read.
  group_name text,
  -- A JSON object as text: the chain hashes these exact bytes.
  details text
);
-- The audit query's filters, each paged by id (DESIGN.md rule 9).
CREATE INDEX audit_entries_actor ON audit_entries (actor, id);
CREATE INDEX audit_entries_group ON audit_entries (group_name, id) WHERE group_name IS NOT NULL;
CREATE INDEX audit_entries_action ON audit_entries (action, id);
CREATE INDEX audit_entries_subject ON audit_entries (subject, id);
CREATE INDEX audit_entries_at ON audit_entries (at);

-- Entries committed and not yet sealed: written in the same statement as the entry, removed in the
-- statement that seals it. Small: the sealer empties it every second.
CREATE TABLE audit_unsealed (
  entry_id bigint PRIMARY KEY
);

-- The hash chain: position `seq` (1, 2, ... without gaps) holds entry `entry_id`; `hash` is
-- SHA-256(prev_hash || canonical form of the entry and its position), prev_hash the hash at seq - 1
-- (32 zero bytes at seq 1). The keys refuse two sealers writing the same position or sealing one entry twice.
CREATE TABLE audit_chain (
  seq bigint PRIMARY KEY CHECK (seq >= 1),
  entry_id bigint NOT NULL UNIQUE,
  prev_hash bytea NOT NULL,
  hash bytea NOT NULL
);

-- The chain's head signed with the audit key (KeyStore name key_name), every audit.checkpointSeconds or
-- audit.checkpointEntries; each one is also appended to a file outside the database and to the log.
CREATE TABLE audit_checkpoints (
  seq bigint PRIMARY KEY CHECK (seq >= 1),
  hash bytea NOT NULL,
  at timestamptz NOT NULL,
  key_name text NOT NULL,
  signature bytea NOT NULL
);
