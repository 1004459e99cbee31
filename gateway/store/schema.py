"""Table definitions shared in spirit by both backends; SQLite's dialect here.

The exchange log is append-only at the database level too: triggers refuse UPDATE and DELETE,
so tampering needs deliberate access to the file, and the hash chain then shows it.
"""

SCHEMA_VERSION = 1

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blobs (sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, data BLOB NOT NULL);
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
  received_at REAL NOT NULL,
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
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
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
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL,
  next_attempt_at REAL NOT NULL,
  lease_owner TEXT,
  lease_token TEXT,
  lease_expires_at REAL,
  delivered_at REAL,
  receipt BLOB,
  replay_of TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(destination, state, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_case ON deliveries(destination, case_number, seq);
CREATE INDEX IF NOT EXISTS deliveries_message ON deliveries(message_id);
-- only unfinished deliveries: leasing and wake-up times never scan the delivered history
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries(destination, seq)
  WHERE state IN ('queued','retrying','in_flight');
CREATE INDEX IF NOT EXISTS deliveries_leased ON deliveries(lease_expires_at) WHERE state = 'in_flight';
CREATE TABLE IF NOT EXISTS attempts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  delivery_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  node TEXT NOT NULL,
  started_at REAL NOT NULL,
  ended_at REAL NOT NULL,
  outcome TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_delivery ON attempts(delivery_id);
CREATE TABLE IF NOT EXISTS audit_log (
  seq INTEGER PRIMARY KEY,
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
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'the exchange log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'the exchange log is append-only'); END;
CREATE TABLE IF NOT EXISTS checkpoints (
  seq INTEGER PRIMARY KEY,
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
"""
