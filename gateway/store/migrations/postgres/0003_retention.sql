-- Retention: each payload counts the messages holding it, so pruning a finished message frees
-- exactly the payloads no other message still needs (dossier files travel unchanged from hop to
-- hop, so several messages share them). Counting in the blob's own row costs intake nothing
-- more than the insert it already made.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS payload_pruned_at DOUBLE PRECISION;
ALTER TABLE blobs ADD COLUMN IF NOT EXISTS refs INTEGER NOT NULL DEFAULT 0;
-- dossier files under DATA_DIR/files: the messages holding each; at 0 it waits to be removed from disk
CREATE TABLE IF NOT EXISTS files (sha256 TEXT PRIMARY KEY, refs INTEGER NOT NULL, unused_since DOUBLE PRECISION);
CREATE INDEX IF NOT EXISTS files_unused ON files(unused_since) WHERE refs <= 0;
-- messages whose payloads are still kept, oldest first: what a retention run walks
CREATE INDEX IF NOT EXISTS messages_unpruned ON messages(received_at, id) WHERE payload_pruned_at IS NULL;
-- count what the messages stored so far hold
CREATE TEMP TABLE held ON COMMIT DROP AS
  SELECT id AS message_id, content_hash AS sha256 FROM messages
  UNION SELECT id, canonical_hash FROM messages WHERE canonical_hash <> ''
  UNION SELECT message_id, body_hash FROM deliveries
  UNION SELECT m.id, a ->> 'sha256'
        FROM messages m, jsonb_array_elements(COALESCE(m.summary::jsonb -> 'attachments', '[]'::jsonb)) a;
UPDATE blobs b SET refs = h.n FROM (SELECT sha256, count(*) AS n FROM held GROUP BY sha256) h
  WHERE h.sha256 = b.sha256;
INSERT INTO files
  SELECT a ->> 'sha256', count(DISTINCT m.id), NULL
  FROM messages m, jsonb_array_elements(COALESCE(m.summary::jsonb -> 'attachments', '[]'::jsonb)) a
  WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = a ->> 'sha256')
  GROUP BY 1
  ON CONFLICT DO NOTHING;
-- one-time tokens any node may be shown (WS-Security nonces): the first claim wins until it expires
CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, expires_at DOUBLE PRECISION NOT NULL);
