-- What operators read must cost the same at ten records and at ten million.
-- Deliveries per destination and state, kept by triggers in the very transaction that inserts a
-- delivery or changes its state (so a crash can never leave the counts and the rows apart), and
-- read by the queue views and /metrics instead of a COUNT(*) over the whole history. `oldest`
-- is exact for the states a delivery never leaves (delivered, discarded); for the others the
-- store reads the first waiting or dead row through deliveries_unfinished.
CREATE TABLE IF NOT EXISTS delivery_counts (
  destination TEXT NOT NULL,
  state TEXT NOT NULL,
  count INTEGER NOT NULL,
  oldest REAL,
  PRIMARY KEY (destination, state)
) WITHOUT ROWID;
INSERT INTO delivery_counts (destination, state, count, oldest)
  SELECT destination, state, count(*), min(created_at) FROM deliveries GROUP BY destination, state;
CREATE TRIGGER IF NOT EXISTS delivery_counts_insert AFTER INSERT ON deliveries BEGIN
  INSERT INTO delivery_counts (destination, state, count, oldest) VALUES (NEW.destination, NEW.state, 1, NEW.created_at)
    ON CONFLICT (destination, state) DO UPDATE SET count = count + 1, oldest = min(coalesce(oldest, excluded.oldest), excluded.oldest);
END;
CREATE TRIGGER IF NOT EXISTS delivery_counts_update AFTER UPDATE OF state, destination ON deliveries
  WHEN OLD.state IS NOT NEW.state OR OLD.destination IS NOT NEW.destination BEGIN
  UPDATE delivery_counts SET count = count - 1 WHERE destination = OLD.destination AND state = OLD.state;
  INSERT INTO delivery_counts (destination, state, count, oldest) VALUES (NEW.destination, NEW.state, 1, NEW.created_at)
    ON CONFLICT (destination, state) DO UPDATE SET count = count + 1, oldest = min(coalesce(oldest, excluded.oldest), excluded.oldest);
END;
CREATE TRIGGER IF NOT EXISTS delivery_counts_delete AFTER DELETE ON deliveries BEGIN
  UPDATE delivery_counts SET count = count - 1 WHERE destination = OLD.destination AND state = OLD.state;
END;
-- Pages of deliveries in one state (dead letters first of all) in queue order, and the oldest of
-- one destination's waiting or dead deliveries: one walk of an index that leaves the delivered
-- history out. Queries name `state <> 'delivered'` to use it; a full (state, seq) index would
-- also tempt the planner away from deliveries_waiting for the dispatcher's next due time.
CREATE INDEX IF NOT EXISTS deliveries_unfinished ON deliveries(state, seq) WHERE state <> 'delivered';
-- How a payload is kept (gateway/store/packing.py): 0 as it came, 1 zlib. Hashes and sizes are of
-- the payload itself, so the log and retention never see the difference.
ALTER TABLE blobs ADD COLUMN codec INTEGER NOT NULL DEFAULT 0;
