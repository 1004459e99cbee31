-- Statistics per agency per day (Asia/Shanghai), kept by the same transaction that commits a record
-- or a delivery, so a month over a province is a few hundred rows to read, never a scan of the
-- messages. `gateway stats rebuild` recomputes every row from messages and deliveries.
CREATE TABLE IF NOT EXISTS stats_daily (
  day TEXT NOT NULL,
  agency TEXT NOT NULL,
  sent BIGINT NOT NULL DEFAULT 0,
  accepted BIGINT NOT NULL DEFAULT 0,
  blocked BIGINT NOT NULL DEFAULT 0,
  warned BIGINT NOT NULL DEFAULT 0,
  first_sub BIGINT NOT NULL DEFAULT 0,
  first_pass BIGINT NOT NULL DEFAULT 0,
  resends BIGINT NOT NULL DEFAULT 0,
  resend_ms BIGINT NOT NULL DEFAULT 0,
  dossier_req BIGINT NOT NULL DEFAULT 0,
  dossier_ok BIGINT NOT NULL DEFAULT 0,
  received BIGINT NOT NULL DEFAULT 0,
  handover_n BIGINT NOT NULL DEFAULT 0,
  handover_ms BIGINT NOT NULL DEFAULT 0,
  recv_handover_n BIGINT NOT NULL DEFAULT 0,
  recv_handover_ms BIGINT NOT NULL DEFAULT 0,
  answers BIGINT NOT NULL DEFAULT 0,
  answer_ms BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (day, agency)
);
CREATE INDEX IF NOT EXISTS stats_daily_agency ON stats_daily(agency, day);
-- records of an agency a rule blocked or warned, per rule id
CREATE TABLE IF NOT EXISTS stats_rules (
  day TEXT NOT NULL, agency TEXT NOT NULL, rule TEXT NOT NULL, n BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (day, agency, rule)
);
CREATE INDEX IF NOT EXISTS stats_rules_agency ON stats_rules(agency, day);
-- hand-over times (ms) in fixed logarithmic buckets, so any range of days merges exactly;
-- side 's': records the agency sent, 'r': records it received
CREATE TABLE IF NOT EXISTS stats_handover (
  day TEXT NOT NULL, agency TEXT NOT NULL, side TEXT NOT NULL, bucket INTEGER NOT NULL, n BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (day, agency, side, bucket)
);
CREATE INDEX IF NOT EXISTS stats_handover_agency ON stats_handover(agency, day);
-- the last record of each (sender, case, action): a record after a blocked one is a resend
CREATE TABLE IF NOT EXISTS stats_chains (
  sender TEXT NOT NULL, case_number TEXT NOT NULL, action TEXT NOT NULL, status TEXT NOT NULL, at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (sender, case_number, action)
);
CREATE INDEX IF NOT EXISTS stats_chains_case ON stats_chains(case_number);
-- a finished day's ranking: the exchange-log entry that holds it (never re-ranked)
CREATE TABLE IF NOT EXISTS stats_rankings (day TEXT PRIMARY KEY, seq BIGINT NOT NULL);
