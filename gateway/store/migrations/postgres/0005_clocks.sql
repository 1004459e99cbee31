-- Statutory time-limit clocks, kept in the transaction that commits the record or delivery they
-- follow: created with the starting record (pending), running from its confirmed delivery to the
-- responsible agency, stopped by that agency's answer. Its last day is counted when the record is
-- taken in, from that day (basis_day); a delivery on another day leaves it for the scanner to count
-- again. next_warn_at is when the next warning is due, so a scan reads only the clocks due one, by
-- index, however many are open.
CREATE TABLE IF NOT EXISTS clocks (
  id TEXT PRIMARY KEY,
  case_number TEXT NOT NULL,
  limit_id TEXT NOT NULL,
  terms TEXT NOT NULL,
  agency TEXT NOT NULL,
  message_id TEXT NOT NULL,
  period INTEGER NOT NULL DEFAULT 1,
  state TEXT NOT NULL,
  created_at DOUBLE PRECISION NOT NULL,
  started_at DOUBLE PRECISION,
  last_day TEXT,
  due_at DOUBLE PRECISION,
  warn_at DOUBLE PRECISION,
  next_warn_at DOUBLE PRECISION,
  extended TEXT NOT NULL DEFAULT '[]',
  stopped_at DOUBLE PRECISION,
  stop_message TEXT,
  stop_action TEXT,
  late_days INTEGER,
  basis_day TEXT
);
CREATE INDEX IF NOT EXISTS clocks_next_warning ON clocks(next_warn_at) WHERE state = 'running' AND next_warn_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS clocks_case ON clocks(case_number, limit_id);
CREATE INDEX IF NOT EXISTS clocks_waiting ON clocks(message_id, agency) WHERE state = 'pending';
-- one row per warning issued: the claim that makes each warning go out once, whichever node sends it
CREATE TABLE IF NOT EXISTS clock_warnings (
  clock_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  issued_at DOUBLE PRECISION NOT NULL,
  node TEXT NOT NULL,
  PRIMARY KEY (clock_id, kind)
);
