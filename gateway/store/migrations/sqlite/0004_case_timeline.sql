-- The case timeline: one row per record of a case (accepted or blocked), written in the same
-- transaction that stores the record, and one row per receiver of an accepted record, whose
-- delivered time the delivery's own commit fills in. Rows are kept in their case's order (the
-- key begins with the case number), so reading a case is one range of one B-tree plus one key
-- lookup per receiver, never a scan of the messages; and a record costs two B-tree inserts.
CREATE TABLE IF NOT EXISTS case_timeline (
  case_number TEXT NOT NULL,
  received_at REAL NOT NULL,
  message_id TEXT NOT NULL REFERENCES messages(id),
  sender TEXT NOT NULL,
  stage TEXT NOT NULL,
  action TEXT NOT NULL,
  status TEXT NOT NULL,
  receivers TEXT NOT NULL,  -- JSON list: the destinations; of a blocked record, those it named
  rules TEXT NOT NULL,      -- JSON list: ids of the rules that blocked the record
  documents TEXT NOT NULL,  -- JSON list of [type, number]
  files INTEGER NOT NULL,   -- the dossier files the record lists, and their total size
  file_bytes INTEGER NOT NULL,
  answered_by TEXT,         -- the first later accepted record of the case from one of its receivers
  answered_at REAL,
  PRIMARY KEY (case_number, received_at, message_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS case_receivers (
  message_id TEXT NOT NULL,
  receiver TEXT NOT NULL,
  delivered_at REAL,        -- the first confirmed delivery to this receiver
  PRIMARY KEY (message_id, receiver)
) WITHOUT ROWID;
-- what the store already holds: the records stored before this version (their documents were not
-- kept apart, and their dossier is the files that travelled with them)
INSERT INTO case_receivers
  SELECT d.message_id, d.destination, MIN(d.delivered_at)
  FROM deliveries d JOIN messages m ON m.id = d.message_id
  WHERE m.status = 'accepted' AND m.case_number <> ''
  GROUP BY d.message_id, d.destination;
INSERT INTO case_timeline (case_number, received_at, message_id, sender, stage, action, status, receivers, rules,
                           documents, files, file_bytes)
  SELECT m.case_number, m.received_at, m.id, m.sender, m.stage, m.action, m.status,
    (SELECT json_group_array(r.receiver) FROM case_receivers r WHERE r.message_id = m.id),
    (SELECT json_group_array(json_extract(p.value, '$.rule')) FROM json_each(m.summary, '$.problems') p
      WHERE json_extract(p.value, '$.severity') = 'block'),
    '[]',
    (SELECT count(*) FROM json_each(m.summary, '$.attachments')),
    (SELECT coalesce(sum(json_extract(a.value, '$.size')), 0) FROM json_each(m.summary, '$.attachments') a)
  FROM messages m WHERE m.case_number <> '';
UPDATE case_timeline SET (answered_by, answered_at) = (
    SELECT a.message_id, a.received_at FROM case_timeline a
    WHERE a.case_number = case_timeline.case_number AND a.status = 'accepted'
      AND (a.received_at, a.message_id) > (case_timeline.received_at, case_timeline.message_id)
      AND a.sender IN (SELECT r.receiver FROM case_receivers r WHERE r.message_id = case_timeline.message_id)
    ORDER BY a.received_at, a.message_id LIMIT 1)
  WHERE status = 'accepted';
