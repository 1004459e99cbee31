-- The case timeline, in PostgreSQL's dialect; same tables and meaning as sqlite/0004_case_timeline.sql
-- (a heap table with its key, read through the case index).
CREATE TABLE IF NOT EXISTS case_timeline (
  message_id TEXT PRIMARY KEY REFERENCES messages(id),
  case_number TEXT NOT NULL,
  received_at DOUBLE PRECISION NOT NULL,
  sender TEXT NOT NULL,
  stage TEXT NOT NULL,
  action TEXT NOT NULL,
  status TEXT NOT NULL,
  receivers TEXT NOT NULL,
  rules TEXT NOT NULL,
  documents TEXT NOT NULL,
  files INTEGER NOT NULL,
  file_bytes BIGINT NOT NULL,
  answered_by TEXT,
  answered_at DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS case_timeline_case ON case_timeline(case_number);
CREATE TABLE IF NOT EXISTS case_receivers (
  message_id TEXT NOT NULL,
  receiver TEXT NOT NULL,
  delivered_at DOUBLE PRECISION,
  PRIMARY KEY (message_id, receiver)
);
INSERT INTO case_receivers
  SELECT d.message_id, d.destination, MIN(d.delivered_at)
  FROM deliveries d JOIN messages m ON m.id = d.message_id
  WHERE m.status = 'accepted' AND m.case_number <> ''
  GROUP BY d.message_id, d.destination
  ON CONFLICT DO NOTHING;
INSERT INTO case_timeline (case_number, received_at, message_id, sender, stage, action, status, receivers, rules,
                           documents, files, file_bytes)
  SELECT m.case_number, m.received_at, m.id, m.sender, m.stage, m.action, m.status,
    (SELECT COALESCE(json_agg(r.receiver ORDER BY r.receiver), '[]'::json)::text
       FROM case_receivers r WHERE r.message_id = m.id),
    (SELECT COALESCE(json_agg(p ->> 'rule'), '[]'::json)::text
       FROM jsonb_array_elements(COALESCE(m.summary::jsonb -> 'problems', '[]'::jsonb)) p
      WHERE p ->> 'severity' = 'block'),
    '[]',
    jsonb_array_length(COALESCE(m.summary::jsonb -> 'attachments', '[]'::jsonb)),
    (SELECT COALESCE(sum((a ->> 'size')::bigint), 0)
       FROM jsonb_array_elements(COALESCE(m.summary::jsonb -> 'attachments', '[]'::jsonb)) a)
  FROM messages m WHERE m.case_number <> ''
  ON CONFLICT DO NOTHING;
UPDATE case_timeline t SET (answered_by, answered_at) = (
    SELECT a.message_id, a.received_at FROM case_timeline a
    WHERE a.case_number = t.case_number AND a.status = 'accepted'
      AND (a.received_at, a.message_id) > (t.received_at, t.message_id)
      AND a.sender IN (SELECT r.receiver FROM case_receivers r WHERE r.message_id = t.message_id)
    ORDER BY a.received_at, a.message_id LIMIT 1)
  WHERE t.status = 'accepted';
