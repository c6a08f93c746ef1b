-- 0009_groups: groups (departments) with their owners and issuance policy, and the business context
-- (labels) that EAB credentials carry to accounts and accounts to the certificates they get.
-- Forward-only: once landed this file is never edited; changes go in a new numbered file.
--
-- A group's policy only narrows the global limits in configuration (the ceiling: key types, profiles and
-- their validity). It is stored as the narrowing alone: a field that is absent means "as the ceiling
-- allows". That is why the `default` group (accounts without EAB) is seeded here with an empty policy: it
-- is exactly the configured limits, whatever the configuration says when this runs or later, without
-- this file reading configuration (it cannot) and without compose() writing at start-up. From then on it
-- is database data, changed with `chancery policy apply` like any other group.
CREATE TABLE groups (
  name text PRIMARY KEY,
  -- JSON array of the owners' addresses.
  contacts jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(contacts) = 'array'),
  -- The narrowing (src/core/group.ts GroupPolicy); {} is the ceiling itself.
  policy jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(policy) = 'object'),
  -- Written by the application from its Clock (DESIGN.md rule 4); NULL for a group as this file seeded it.
  updated_at timestamptz
);

INSERT INTO groups (name) VALUES ('default');

-- Upgrade: every group name already in use becomes a group with the default (empty) policy, so accounts
-- and credentials keep issuing as they did.
INSERT INTO groups (name)
  SELECT group_name FROM eab_credentials WHERE group_name IS NOT NULL
  UNION
  SELECT group_name FROM accounts WHERE group_name IS NOT NULL
  ON CONFLICT (name) DO NOTHING;

-- An EAB credential's labels (owner, application, environment, ...) go to the account bound with it; a
-- credential and an account name an existing group, so a group in use cannot be removed.
ALTER TABLE eab_credentials
  ADD COLUMN labels jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
  ADD CONSTRAINT eab_credentials_group_name_fkey FOREIGN KEY (group_name) REFERENCES groups (name);

-- Copied from the credential when the account is created (credentials never change afterwards), so that
-- finalize has them with the account it already read and needs no further round trip.
ALTER TABLE accounts
  ADD COLUMN labels jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
  ADD CONSTRAINT accounts_group_name_fkey FOREIGN KEY (group_name) REFERENCES groups (name);

-- Removing a group checks that no account names it; without this index that is a scan of every account.
CREATE INDEX accounts_group_name ON accounts (group_name) WHERE group_name IS NOT NULL;

-- The inventory record of a certificate: the group of the account that got it and its labels (the group's
-- default labels with the credential's over them), as they were at issuance. Never written into the X.509
-- certificate itself. NULL for certificates issued outside ACME and before this migration. No foreign key:
-- the record is history and outlives a group that is later removed.
ALTER TABLE certificates
  ADD COLUMN group_name text,
  ADD COLUMN labels jsonb CHECK (labels IS NULL OR jsonb_typeof(labels) = 'object');
