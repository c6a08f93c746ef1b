-- 0008_order_processing: when an order was claimed for issuance (ready -> processing, RFC 8555 §7.4), so
-- that an order a finalize left `processing` (its process died, or lost the database, between claiming the
-- order and storing the certificate) is found and ended as `invalid` (§7.1.6 has no way back to `ready`).
-- Forward-only: once landed this file is never edited; changes go in a new numbered file.
-- Written by the application from its Clock (DESIGN.md rule 4). Orders already processing keep NULL; the
-- recovery reads their created_at instead.
ALTER TABLE orders ADD COLUMN processing_since timestamptz;

-- The recovery job's scan: only the (few) orders being processed are in it, so it stays small whatever the
-- number of orders, and an order leaves it when it turns valid or invalid.
CREATE INDEX orders_processing ON orders (processing_since) WHERE status = 'processing';
