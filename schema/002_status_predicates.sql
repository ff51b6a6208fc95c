-- 002_status_predicates: the same rules as 001, written so that SQLite
-- evaluates them with plain comparisons.
--
-- SQLite turns `x IN (a, b, c)` with three or more constants into an
-- ephemeral b-tree, built and torn down on every execution of a statement
-- that evaluates it.  The partial index runs_runnable is evaluated by every
-- UPDATE of runs (twice: old row and new row) and the CHECK on steps.status
-- by every step write, so each run paid for several throw-away b-trees per
-- step (about 10 us each; measured with tests/bench/gpt_bench).  An OR of
-- equalities means exactly the same and costs a few comparisons.
--
-- The queries that walk runs_runnable repeat its predicate word for word
-- (store_runs.c): SQLite uses a partial index only for a WHERE clause that
-- contains the index's own condition.

DROP INDEX runs_runnable;
CREATE INDEX runs_runnable ON runs (next_attempt_at)
  WHERE status = 'queued' OR status = 'retrying' OR status = 'budget';

-- A CHECK constraint cannot be altered in place: the table is rebuilt with
-- the same columns in the same order.  No other table refers to steps.
CREATE TABLE steps_new (
  run_id            INTEGER NOT NULL REFERENCES runs (id),
  position          INTEGER NOT NULL CHECK (position >= 0),
  step_id           TEXT NOT NULL,
  status            TEXT NOT NULL CHECK (status = 'running' OR status = 'succeeded' OR
                                         status = 'skipped' OR status = 'failed'),
  attempts          INTEGER NOT NULL DEFAULT 0,
  input             TEXT,
  output            TEXT,
  state             TEXT,
  error             TEXT,
  started_at        INTEGER NOT NULL DEFAULT 0,
  finished_at       INTEGER NOT NULL DEFAULT 0,    -- 0 while running
  duration_ms       INTEGER NOT NULL DEFAULT 0,    -- of the last attempt
  prompt_tokens     INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  cached_tokens     INTEGER NOT NULL DEFAULT 0,
  cost_usd          REAL NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, position)
) STRICT;
INSERT INTO steps_new SELECT run_id, position, step_id, status, attempts, input, output, state,
  error, started_at, finished_at, duration_ms, prompt_tokens, completion_tokens, cached_tokens,
  cost_usd FROM steps;
DROP TABLE steps;
ALTER TABLE steps_new RENAME TO steps;
