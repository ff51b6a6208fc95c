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

-- Where the walk over events that never had a run (no recipe matched them)
-- stopped: events are walked once, in id order, up to the retention cutoff.
INSERT INTO meta (key, value) VALUES ('prune_events_after', 0);
