-- Retention: each payload counts the messages holding it, so pruning a finished message frees
-- exactly the payloads no other message still needs (dossier files travel unchanged from hop to
-- hop, so several messages share them). Counting in the blob's own row costs intake nothing
-- more than the insert it already made.
ALTER TABLE messages ADD COLUMN payload_pruned_at REAL;
ALTER TABLE blobs ADD COLUMN refs INTEGER NOT NULL DEFAULT 0;
-- dossier files under DATA_DIR/files: the messages holding each; at 0 it waits to be removed from disk
CREATE TABLE IF NOT EXISTS files (sha256 TEXT PRIMARY KEY, refs INTEGER NOT NULL, unused_since REAL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS files_unused ON files(unused_since) WHERE refs <= 0;
-- messages whose payloads are still kept, oldest first: what a retention run walks
CREATE INDEX IF NOT EXISTS messages_unpruned ON messages(received_at, id) WHERE payload_pruned_at IS NULL;
-- count what the messages stored so far hold
CREATE TEMP TABLE held AS
  SELECT id AS message_id, content_hash AS sha256 FROM messages
  UNION SELECT id, canonical_hash FROM messages WHERE canonical_hash <> ''
  UNION SELECT message_id, body_hash FROM deliveries
  UNION SELECT m.id, json_extract(a.value, '$.sha256') FROM messages m, json_each(m.summary, '$.attachments') a;
CREATE INDEX temp.held_sha256 ON held(sha256);
UPDATE blobs SET refs = (SELECT count(*) FROM held WHERE held.sha256 = blobs.sha256);
INSERT INTO files
  SELECT json_extract(a.value, '$.sha256'), count(DISTINCT m.id), NULL
  FROM messages m, json_each(m.summary, '$.attachments') a
  WHERE json_extract(a.value, '$.sha256') NOT IN (SELECT sha256 FROM blobs)
  GROUP BY 1;
DROP TABLE temp.held;
