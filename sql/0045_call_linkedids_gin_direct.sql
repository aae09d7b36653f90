-- 0045: call.linkedids' GIN index without a pending list (issue 15).
--
-- A GIN index with fastupdate (PostgreSQL's default) queues new entries in
-- a pending list of up to gin_pending_list_limit (4 MB) that every search
-- reads in full until vacuum merges it.  cdrflow_qos_step looks up the
-- calls of the batch's QoS legs in this index (linkedids @> ARRAY[...]), as
-- cdrflow-query flow does: with the calls of a long load queued there,
-- each probe took 0.8 ms instead of 0.01 ms, and the step's cost grew with
-- the load (measured on bench-etl's 2 M-event stream: 43 ms per batch, and
-- rising, for 60 probes; 0.8 ms once the list was merged).  A call row has
-- one or a few linkedids: inserting them straight into the index costs
-- COPY little.

-- Rebuilt with the option (a partitioned index takes storage options only
-- when created; its partitions', now and in later months, follow it).
DROP INDEX call_linkedids_idx;
CREATE INDEX call_linkedids_idx ON call USING gin (linkedids) WITH (fastupdate = off);
