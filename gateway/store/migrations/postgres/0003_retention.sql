-- Retention: which payloads each message holds on to, so that pruning a finished message frees
-- exactly the payloads no other message still needs (dossier files travel unchanged from hop to
-- hop, so several messages share them).
ALTER TABLE messages ADD COLUMN IF NOT EXISTS payload_pruned_at DOUBLE PRECISION;
CREATE TABLE IF NOT EXISTS payload_refs (
  message_id TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  kind TEXT NOT NULL,  -- blob: in the blobs table; file: a dossier file under DATA_DIR/files
  PRIMARY KEY (message_id, sha256)
);
CREATE INDEX IF NOT EXISTS payload_refs_sha256 ON payload_refs(sha256);
-- messages whose payloads are still kept, oldest first: what a retention run walks
CREATE INDEX IF NOT EXISTS messages_unpruned ON messages(received_at, id) WHERE payload_pruned_at IS NULL;
-- dossier files no message needs any more, until they are removed from disk (after the commit)
CREATE TABLE IF NOT EXISTS file_removals (sha256 TEXT PRIMARY KEY, listed_at DOUBLE PRECISION NOT NULL);
INSERT INTO payload_refs SELECT id, content_hash, 'blob' FROM messages ON CONFLICT DO NOTHING;
INSERT INTO payload_refs SELECT id, canonical_hash, 'blob' FROM messages WHERE canonical_hash <> ''
  ON CONFLICT DO NOTHING;
INSERT INTO payload_refs SELECT message_id, body_hash, 'blob' FROM deliveries ON CONFLICT DO NOTHING;
INSERT INTO payload_refs
  SELECT m.id, a ->> 'sha256', 'file'
  FROM messages m, jsonb_array_elements(COALESCE(m.summary::jsonb -> 'attachments', '[]'::jsonb)) a
  ON CONFLICT DO NOTHING;
-- one-time tokens any node may be shown (WS-Security nonces): the first claim wins until it expires
CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, expires_at DOUBLE PRECISION NOT NULL);
