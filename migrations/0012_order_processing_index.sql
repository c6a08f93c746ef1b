-- 0012_order_processing_index: the recovery job's index from 0008 also matched the statement that stores a
-- certificate and turns its order valid ("WHERE o.id = ... AND o.status = 'processing'"), and the planner of
-- the keyed pool walked that index instead of looking the order up by its key. The new index holds only
-- orders whose claim time is recorded, which that statement does not ask about, so it cannot be chosen there.
-- Forward-only: once landed this file is never edited; changes go in a new numbered file.
DROP INDEX orders_processing;

-- Orders processing since before 0008 recorded claim times: their creation time stands in (never later than
-- the claim). Written from existing columns, not from the server's clock (DESIGN.md rule 4).
UPDATE orders SET processing_since = created_at WHERE status = 'processing' AND processing_since IS NULL;

CREATE INDEX orders_processing_since ON orders (processing_since) WHERE status = 'processing' AND processing_since IS NOT NULL;
