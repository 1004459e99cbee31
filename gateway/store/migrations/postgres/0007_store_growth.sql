-- What operators read must cost the same at ten records and at ten million.
-- Deliveries per destination and state, kept by triggers in the very transaction that inserts a
-- delivery or changes its state (so a crash can never leave the counts and the rows apart), and
-- read by the queue views and /metrics instead of a COUNT(*) over the whole history. `oldest`
-- is exact for the states a delivery never leaves (delivered, discarded); for the others the
-- store reads the first waiting or dead row through deliveries_unfinished.
CREATE TABLE IF NOT EXISTS delivery_counts (
  destination TEXT NOT NULL,
  state TEXT NOT NULL,
  count BIGINT NOT NULL,
  oldest DOUBLE PRECISION,
  PRIMARY KEY (destination, state)
);
INSERT INTO delivery_counts (destination, state, count, oldest)
  SELECT destination, state, count(*), min(created_at) FROM deliveries GROUP BY destination, state
  ON CONFLICT DO NOTHING;
CREATE OR REPLACE FUNCTION delivery_counts_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    UPDATE delivery_counts SET count = count - 1 WHERE destination = OLD.destination AND state = OLD.state;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO delivery_counts AS c (destination, state, count, oldest)
      VALUES (NEW.destination, NEW.state, 1, NEW.created_at)
      ON CONFLICT (destination, state) DO UPDATE
      SET count = c.count + 1, oldest = least(c.oldest, excluded.oldest);
  END IF;
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS delivery_counts_insert ON deliveries;
CREATE TRIGGER delivery_counts_insert AFTER INSERT OR DELETE ON deliveries
  FOR EACH ROW EXECUTE FUNCTION delivery_counts_keep();
DROP TRIGGER IF EXISTS delivery_counts_update ON deliveries;
CREATE TRIGGER delivery_counts_update AFTER UPDATE OF state, destination ON deliveries
  FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.destination IS DISTINCT FROM NEW.destination)
  EXECUTE FUNCTION delivery_counts_keep();
-- Pages of deliveries in one state (dead letters first of all) in queue order, and the oldest of
-- one destination's waiting or dead deliveries: one walk of an index that leaves the delivered
-- history out. Queries name `state <> 'delivered'` to use it; a full (state, seq) index would
-- also tempt the planner away from deliveries_waiting for the dispatcher's next due time.
CREATE INDEX IF NOT EXISTS deliveries_unfinished ON deliveries(state, seq) WHERE state <> 'delivered';
