-- Health of active triggers (pollers, schedules), per event source: when it
-- last worked, when it last tried, and the error of its last failure.
-- Written by the daemon in the same transaction as what the attempt
-- produced; read by `promptd status` from any process.
CREATE TABLE trigger_health (
  source       TEXT PRIMARY KEY,
  last_success INTEGER,          -- ms since the epoch, NULL: never
  last_attempt INTEGER NOT NULL,
  last_error   TEXT,             -- NULL after a success
  failing_since INTEGER          -- first failure of the current run of failures
) STRICT, WITHOUT ROWID;
