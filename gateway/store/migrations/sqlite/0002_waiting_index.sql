-- When the next delivery falls due: an index of the waiting deliveries only, so the dispatcher's
-- wake-up time costs the same with ten or ten million delivered records behind it (the
-- (destination, state, next_attempt_at) index cannot answer it without reading every entry).
CREATE INDEX IF NOT EXISTS deliveries_waiting ON deliveries(next_attempt_at)
  WHERE state IN ('queued', 'retrying');
