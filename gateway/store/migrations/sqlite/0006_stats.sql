-- Statistics per agency per day (Asia/Shanghai), kept by the same transaction that commits a record
-- or a delivery, so a month over a province is a few hundred rows to read, never a scan of the
-- messages. `gateway stats rebuild` recomputes every row from messages and deliveries.
CREATE TABLE IF NOT EXISTS stats_daily (
  day TEXT NOT NULL,
  agency TEXT NOT NULL,
  sent INTEGER NOT NULL DEFAULT 0,
  accepted INTEGER NOT NULL DEFAULT 0,
  blocked INTEGER NOT NULL DEFAULT 0,
  warned INTEGER NOT NULL DEFAULT 0,
  first_sub INTEGER NOT NULL DEFAULT 0,
  first_pass INTEGER NOT NULL DEFAULT 0,
  resends INTEGER NOT NULL DEFAULT 0,
  resend_ms INTEGER NOT NULL DEFAULT 0,
  dossier_req INTEGER NOT NULL DEFAULT 0,
  dossier_ok INTEGER NOT NULL DEFAULT 0,
  received INTEGER NOT NULL DEFAULT 0,
  handover_n INTEGER NOT NULL DEFAULT 0,
  handover_ms INTEGER NOT NULL DEFAULT 0,
  recv_handover_n INTEGER NOT NULL DEFAULT 0,
  recv_handover_ms INTEGER NOT NULL DEFAULT 0,
  answers INTEGER NOT NULL DEFAULT 0,
  answer_ms INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (day, agency)
);
CREATE INDEX IF NOT EXISTS stats_daily_agency ON stats_daily(agency, day);
-- records of an agency a rule blocked or warned, per rule id
CREATE TABLE IF NOT EXISTS stats_rules (
  day TEXT NOT NULL, agency TEXT NOT NULL, rule TEXT NOT NULL, n INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (day, agency, rule)
);
CREATE INDEX IF NOT EXISTS stats_rules_agency ON stats_rules(agency, day);
-- hand-over times (ms) in fixed logarithmic buckets, so any range of days merges exactly;
-- side 's': records the agency sent, 'r': records it received
CREATE TABLE IF NOT EXISTS stats_handover (
  day TEXT NOT NULL, agency TEXT NOT NULL, side TEXT NOT NULL, bucket INTEGER NOT NULL, n INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (day, agency, side, bucket)
);
CREATE INDEX IF NOT EXISTS stats_handover_agency ON stats_handover(agency, day);
-- the last record of each (sender, case, action): a record after a blocked one is a resend
CREATE TABLE IF NOT EXISTS stats_chains (
  sender TEXT NOT NULL, case_number TEXT NOT NULL, action TEXT NOT NULL, status TEXT NOT NULL, at REAL NOT NULL,
  PRIMARY KEY (sender, case_number, action)
);
CREATE INDEX IF NOT EXISTS stats_chains_case ON stats_chains(case_number);
-- a finished day's ranking: the exchange-log entry that holds it (never re-ranked)
CREATE TABLE IF NOT EXISTS stats_rankings (day TEXT PRIMARY KEY, seq INTEGER NOT NULL);
