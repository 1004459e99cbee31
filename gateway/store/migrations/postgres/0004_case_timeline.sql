-- The case timeline, in PostgreSQL's dialect; same tables and meaning as sqlite/0004_case_timeline.sql.
CREATE TABLE IF NOT EXISTS case_timeline (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  message_id TEXT NOT NULL UNIQUE REFERENCES messages(id),
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
CREATE INDEX IF NOT EXISTS case_timeline_case ON case_timeline(case_number, seq);
CREATE TABLE IF NOT EXISTS case_receivers (
  message_id TEXT NOT NULL,
  receiver TEXT NOT NULL,
  case_number TEXT NOT NULL,
  delivered_at DOUBLE PRECISION,
  PRIMARY KEY (message_id, receiver)
);
CREATE INDEX IF NOT EXISTS case_receivers_case ON case_receivers(case_number, receiver);
INSERT INTO case_receivers
  SELECT d.message_id, d.destination, d.case_number, MIN(d.delivered_at)
  FROM deliveries d JOIN messages m ON m.id = d.message_id
  WHERE m.status = 'accepted' AND m.case_number <> ''
  GROUP BY d.message_id, d.destination, d.case_number
  ON CONFLICT DO NOTHING;
INSERT INTO case_timeline (message_id, case_number, received_at, sender, stage, action, status, receivers, rules,
                           documents, files, file_bytes)
  SELECT m.id, m.case_number, m.received_at, m.sender, m.stage, m.action, m.status,
    (SELECT COALESCE(json_agg(r.receiver ORDER BY r.receiver), '[]'::json)::text
       FROM case_receivers r WHERE r.message_id = m.id),
    (SELECT COALESCE(json_agg(p ->> 'rule'), '[]'::json)::text
       FROM jsonb_array_elements(COALESCE(m.summary::jsonb -> 'problems', '[]'::jsonb)) p
      WHERE p ->> 'severity' = 'block'),
    '[]',
    jsonb_array_length(COALESCE(m.summary::jsonb -> 'attachments', '[]'::jsonb)),
    (SELECT COALESCE(sum((a ->> 'size')::bigint), 0)
       FROM jsonb_array_elements(COALESCE(m.summary::jsonb -> 'attachments', '[]'::jsonb)) a)
  FROM messages m WHERE m.case_number <> '' ORDER BY m.received_at, m.id
  ON CONFLICT DO NOTHING;
UPDATE case_timeline t SET (answered_by, answered_at) = (
    SELECT a.message_id, a.received_at FROM case_timeline a
    WHERE a.case_number = t.case_number AND a.seq > t.seq AND a.status = 'accepted'
      AND a.sender IN (SELECT r.receiver FROM case_receivers r WHERE r.message_id = t.message_id)
    ORDER BY a.seq LIMIT 1)
  WHERE t.status = 'accepted';
