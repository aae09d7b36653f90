-- 0030: indexes that cost every load and serve no reader, and the ones the
-- big lookups lack (issue 15, docs/etl.md "Indexes").
--
-- ami_event (event, eventtime) and (linkedid): no query in sql/, query/,
-- report/ or templates/ reads ami_event by event name and time or by
-- linkedid (the analytics read a batch by (node, seq) through
-- ami_event_node_seq_idx and the partial queue/member indexes; the queue
-- abandon check reads by uniqueid; cdrflow-query flow reads cel).  Each
-- cost the COPY into ami_event an index insertion per row.
DROP INDEX IF EXISTS ami_event_event_time_idx;
DROP INDEX IF EXISTS ami_event_linkedid_idx;

-- cdrflow-query calls --src X (calls, not legs) filtered call.src over the
-- period's call partitions row by row.
CREATE INDEX IF NOT EXISTS call_src_idx ON call (src, start);
