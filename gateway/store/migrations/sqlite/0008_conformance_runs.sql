-- Each agency's last conformance run, read at every start: a walk of this small index instead of
-- every entry the agency's messages wrote (8 million a year: minutes of a starting node's CPU).
-- Partial, so the entries appended at intake and delivery do not pay for it.
CREATE INDEX IF NOT EXISTS audit_conformance_runs ON audit_log(actor, seq) WHERE action = 'conformance-run';
