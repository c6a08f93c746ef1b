-- 0017_identifier_set_nullable: certificates.identifier_set (0014) may be null. 0014's trigger sets it for
-- every certificate stored with triggers on (every writer of the application); a bulk load that turns
-- triggers off (the inventory bench's COPY) stores none, and such certificates simply have no implicit
-- predecessor: the lineage lookup never matches a null set. Refusing them instead would fail the load.
-- Forward-only: once landed this file is never edited; changes go in a new numbered file.
ALTER TABLE certificates ALTER COLUMN identifier_set DROP NOT NULL;
