-- 0015_audit_time_order: the audit query pages by (at, id) instead of id alone (src/db/repositories/
-- audit-repository.ts), so that every filter, a time range included, is one index range scan.
-- Forward-only: once landed this file is never edited; changes go in a new numbered file.
--
-- Why: paged by id, a time range's first page had to walk the primary key past every older entry to find
-- the first one in range (`at` and `id` are in nearly the same order, but only nearly: an entry's time is
-- taken when its change starts, its id when it is inserted, and instances' clocks differ, so no id bound can
-- be derived from a time exactly). At 10M entries that was 3-5 s and 125,000-250,000 buffers for a page
-- (bench/audit.ts). With `at` leading every index after the filter's own column, a page starts at the range
-- (or the cursor) and reads what it returns (DESIGN.md rule 9).
DROP INDEX audit_entries_actor;
DROP INDEX audit_entries_action;
DROP INDEX audit_entries_subject;
DROP INDEX audit_entries_group;
DROP INDEX audit_entries_at;
CREATE INDEX audit_entries_actor ON audit_entries (actor, at, id);
CREATE INDEX audit_entries_action ON audit_entries (action, at, id);
CREATE INDEX audit_entries_subject ON audit_entries (subject, at, id);
CREATE INDEX audit_entries_group ON audit_entries (group_name, at, id) WHERE group_name IS NOT NULL;
CREATE INDEX audit_entries_at ON audit_entries (at, id);
