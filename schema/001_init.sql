-- 001_init: the first promptd schema.
--
-- Applied by store_open inside one transaction together with
-- PRAGMA user_version = 1; never edit a released migration, add 002_*.sql.
-- Times are integer milliseconds since the Unix epoch; JSON is stored as
-- TEXT.  Tables are STRICT so a wrongly typed bind fails loudly instead of
-- being stored as whatever SQLite's affinity makes of it.

-- Small counters shared by every process using the file.
-- recipes_generation: bumped by the triggers below on any write to
-- `recipes`, so a daemon notices imports done by `promptd recipe import`
-- with one cheap read.
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('recipes_generation', 0);

-- One head row per recipe name.  A removed recipe keeps its head row
-- (removed = 1) so its versions stay reachable for the runs that used them
-- and a later import continues its version numbers.
CREATE TABLE recipes (
  name            TEXT PRIMARY KEY,
  current_version INTEGER NOT NULL,
  enabled         INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  removed         INTEGER NOT NULL DEFAULT 0 CHECK (removed IN (0, 1)),
  source          TEXT NOT NULL,     -- event source the current version's trigger matches
  file            TEXT,              -- file imported from, NULL when not from a file
  updated_at      INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Every definition ever stored; runs name (recipe, version).  Definitions
-- can be several KiB, so this keeps a rowid (WITHOUT ROWID suits small rows).
CREATE TABLE recipe_versions (
  name       TEXT NOT NULL REFERENCES recipes (name),
  version    INTEGER NOT NULL CHECK (version >= 1),
  definition TEXT NOT NULL,          -- validated recipe as JSON
  digest     TEXT NOT NULL,          -- hex SHA-256 of definition
  source     TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (name, version)
) STRICT;

CREATE TRIGGER recipes_generation_insert AFTER INSERT ON recipes BEGIN
  UPDATE meta SET value = value + 1 WHERE key = 'recipes_generation';
END;
CREATE TRIGGER recipes_generation_update AFTER UPDATE ON recipes BEGIN
  UPDATE meta SET value = value + 1 WHERE key = 'recipes_generation';
END;
CREATE TRIGGER recipes_generation_delete AFTER DELETE ON recipes BEGIN
  UPDATE meta SET value = value + 1 WHERE key = 'recipes_generation';
END;

-- Events as triggers delivered them.  dedupe_key NULL means "never a
-- duplicate" (UNIQUE lets NULLs repeat); intake normally supplies a key.
CREATE TABLE events (
  id          INTEGER PRIMARY KEY,
  source      TEXT NOT NULL,
  dedupe_key  TEXT,
  payload     TEXT NOT NULL,         -- JSON object
  received_at INTEGER NOT NULL,
  UNIQUE (source, dedupe_key)
) STRICT;

-- One run per (event, matching recipe).  status is not CHECKed: later
-- issues add states (budget, awaiting_approval) and SQLite cannot alter a
-- CHECK without rebuilding the table; the engine owns the state machine
-- (see the top of src/core/store.c).
CREATE TABLE runs (
  id              INTEGER PRIMARY KEY,
  event_id        INTEGER NOT NULL REFERENCES events (id),
  recipe          TEXT NOT NULL,
  recipe_version  INTEGER NOT NULL,
  status          TEXT NOT NULL,
  attempt         INTEGER NOT NULL DEFAULT 0,   -- tries of the current step so far
  next_attempt_at INTEGER NOT NULL,             -- when queued/retrying/budget becomes due
  last_error      TEXT,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  FOREIGN KEY (recipe, recipe_version) REFERENCES recipe_versions (name, version)
) STRICT;

-- The scheduler's query walks this in next_attempt_at order and stops after
-- a few rows.  Partial, so finished runs (the vast majority over time)
-- cost it nothing.
CREATE INDEX runs_runnable ON runs (next_attempt_at)
  WHERE status IN ('queued', 'retrying', 'budget');
-- Runs waiting for a time (a retry, or a budget window): the scheduler's
-- wake-up timer reads the earliest.  Fresh runs never enter it.
CREATE INDEX runs_waiting ON runs (next_attempt_at)
  WHERE status IN ('retrying', 'budget');
-- Runs of one event; also what a foreign-key check on events needs.
CREATE INDEX runs_event ON runs (event_id);
-- No index on status or recipe: every intake pays for each index on runs,
-- and these two cost about 8 % of intake throughput (tests/bench) to speed
-- up `runs list --status/--recipe`, `status` and the start-up requeue,
-- which scan the table instead.

-- One row per step that began (or was skipped).  Outputs are stored before
-- the next step starts; `state` is a step kind's exactly-once bookkeeping
-- (for example csvfile's file offset), written when the attempt begins.
CREATE TABLE steps (
  run_id            INTEGER NOT NULL REFERENCES runs (id),
  position          INTEGER NOT NULL CHECK (position >= 0),
  step_id           TEXT NOT NULL,
  status            TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'skipped', 'failed')),
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

-- Poll triggers' positions, written in the same transaction as the events
-- they produced: no gap, no repeat.
CREATE TABLE cursors (
  source     TEXT PRIMARY KEY,
  cursor     TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- GPT usage per UTC day, provider, model and recipe, for budgets and
-- reports; filled by the GPT client.
CREATE TABLE usage (
  day               TEXT NOT NULL,   -- YYYY-MM-DD, UTC
  provider          TEXT NOT NULL,
  model             TEXT NOT NULL,
  recipe            TEXT NOT NULL,
  requests          INTEGER NOT NULL DEFAULT 0,
  prompt_tokens     INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  cached_tokens     INTEGER NOT NULL DEFAULT 0,
  cost_usd          REAL NOT NULL DEFAULT 0,
  PRIMARY KEY (day, provider, model, recipe)
) STRICT, WITHOUT ROWID;

-- Responses kept for steps that opt in to caching (`cache: 24h`): an
-- identical request (key: hash of provider, model, messages, parameters and
-- schema) reuses the stored answer until it expires.
CREATE TABLE response_cache (
  key        TEXT PRIMARY KEY,
  response   TEXT NOT NULL,       -- JSON, as the step stored it
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
