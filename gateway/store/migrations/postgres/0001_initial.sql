-- The first schema, in PostgreSQL's dialect; same tables and meaning as sqlite/0001_initial.sql,
-- plus audit_head: the one row every exchange-log append locks, so nodes never fork the chain.
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blobs (sha256 TEXT PRIMARY KEY, size BIGINT NOT NULL, data BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
  id TEXT PRIMARY KEY,
  sender TEXT NOT NULL,
  channel TEXT NOT NULL,
  sender_message_id TEXT,
  content_hash TEXT NOT NULL,
  canonical_hash TEXT NOT NULL,
  case_number TEXT NOT NULL,
  stage TEXT NOT NULL,
  action TEXT NOT NULL,
  status TEXT NOT NULL,
  reasons TEXT NOT NULL,
  received_at DOUBLE PRECISION NOT NULL,
  file_name TEXT,
  operation TEXT,
  summary TEXT NOT NULL,
  receipt TEXT NOT NULL,
  node TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_sender_mid ON messages(sender, sender_message_id)
  WHERE sender_message_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_sender_hash ON messages(sender, content_hash);
CREATE INDEX IF NOT EXISTS messages_case ON messages(case_number);
CREATE TABLE IF NOT EXISTS deliveries (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  message_id TEXT NOT NULL REFERENCES messages(id),
  destination TEXT NOT NULL,
  case_number TEXT NOT NULL,
  body_hash TEXT NOT NULL,
  content_type TEXT NOT NULL,
  file_name TEXT,
  state TEXT NOT NULL,
  reason TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  created_at DOUBLE PRECISION NOT NULL,
  updated_at DOUBLE PRECISION NOT NULL,
  next_attempt_at DOUBLE PRECISION NOT NULL,
  lease_owner TEXT,
  lease_token TEXT,
  lease_expires_at DOUBLE PRECISION,
  delivered_at DOUBLE PRECISION,
  receipt BYTEA,
  replay_of TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(destination, state, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_case ON deliveries(destination, case_number, seq);
CREATE INDEX IF NOT EXISTS deliveries_message ON deliveries(message_id);
-- only unfinished deliveries: leasing and wake-up times never scan the delivered history
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries(destination, seq)
  WHERE state IN ('queued', 'retrying', 'in_flight');
CREATE INDEX IF NOT EXISTS deliveries_leased ON deliveries(lease_expires_at) WHERE state = 'in_flight';
CREATE INDEX IF NOT EXISTS deliveries_open_case ON deliveries(destination, case_number, seq)
  WHERE state IN ('queued', 'retrying', 'in_flight', 'dead');
CREATE TABLE IF NOT EXISTS attempts (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  delivery_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  node TEXT NOT NULL,
  started_at DOUBLE PRECISION NOT NULL,
  ended_at DOUBLE PRECISION NOT NULL,
  outcome TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_delivery ON attempts(delivery_id);
CREATE TABLE IF NOT EXISTS audit_log (
  seq BIGINT PRIMARY KEY,
  time TEXT NOT NULL,
  node TEXT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  message_id TEXT NOT NULL,
  case_number TEXT NOT NULL,
  payload_hash TEXT NOT NULL,
  detail TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  entry_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_case ON audit_log(case_number);
CREATE INDEX IF NOT EXISTS audit_message ON audit_log(message_id);
CREATE INDEX IF NOT EXISTS audit_time ON audit_log(time);
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the exchange log is append-only';
END $$;
DROP TRIGGER IF EXISTS audit_no_change ON audit_log;
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_append_only();
DROP TRIGGER IF EXISTS audit_no_truncate ON audit_log;
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TABLE IF NOT EXISTS audit_head (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq BIGINT NOT NULL,
  entry_hash TEXT NOT NULL,
  time TEXT NOT NULL
);
INSERT INTO audit_head VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', '')
  ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS checkpoints (
  seq BIGINT PRIMARY KEY,
  entry_hash TEXT NOT NULL,
  signed_at TEXT NOT NULL,
  signature TEXT NOT NULL,
  key_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
  key_hash TEXT PRIMARY KEY,
  role TEXT NOT NULL,
  name TEXT NOT NULL,
  agency TEXT
);
CREATE TABLE IF NOT EXISTS ingested_files (
  channel TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  message_id TEXT NOT NULL,
  PRIMARY KEY (channel, fingerprint)
);
