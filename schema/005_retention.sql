-- 005_retention: what pruning (src/core/store_prune.c) needs to find old
-- finished runs without scanning the table.
--
-- Partial on the final states, so intake (runs are created `queued`) and
-- every step of a run in flight cost it nothing; a run enters it once, when
-- it finishes.  (status, updated_at): pruning asks one status at a time for
-- the rows finished before that status's cutoff, oldest first.  The WHERE
-- clause is repeated word for word by the queries that use it (see 002).
CREATE INDEX runs_finished ON runs (status, updated_at)
  WHERE status = 'succeeded' OR status = 'failed';

-- The walk over events that never had a run keeps its position in meta
-- under 'prune_events_after', written by the first pass that walks.
