-- 0054: a batch's reads of what is stored already are probes by key, so
-- their cost follows the batch, not the history loaded before it (issue 15).
--
-- Measured with pg_stat_statements and auto_explain on bench-etl's stream
-- (1.08 M and 2.15 M events, batches of 100,000 events):
--
-- 1. cdrflow-etl drops from each batch the legs stored already (by
--    cdr_leg_once) and the calls stored already (same node, call_id and
--    start) before writing it.  Both statements joined the batch table with
--    the whole stored table: a hash join over every row of cdr_leg_once and
--    a merge join over every row of call, sorted, once per batch, with or
--    without analytics (8 ms and 15 ms a batch at 1 M events, growing with
--    every batch loaded).  The session's batch tables have no statistics,
--    so the planner does not see that a batch is a few thousand rows; the
--    two statements now run in functions that plan them without hash or
--    merge joins: each batch row probes the primary key of cdr_leg_once,
--    or the call_id index of the month of its start.  Same rows deleted,
--    same "count first" returned.  (Bounding the stored side with
--    "= ANY (batch's keys)" instead gave a bitmap scan on node alone with
--    the keys as a filter: worse.)
--
-- 2. cdrflow_qos_step read every event of the batch (node, seq range, the
--    node_seq index) to keep its RTCPSent/RTCPReceived ones, 2 % of them.
--    0011 gave the queue steps a partial index each and not this step,
--    because the step's RTT sum depended on the order the scan returned
--    rows; 0053 adds them in event order, so the plan no longer changes the
--    result, and the step gets its partial index like the queue steps (an
--    index entry for 2 % of the event rows).

CREATE INDEX ami_event_rtcp_idx ON ami_event (node, seq) WHERE event IN ('RTCPSent', 'RTCPReceived');

-- The legs of cdr_batch stored already (cdr_leg_once, 0014) are deleted
-- from it; returns 'count first_sequence' of those deleted.
CREATE OR REPLACE FUNCTION cdrflow_drop_stored_legs() RETURNS text
LANGUAGE plpgsql SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
	v text;
BEGIN
	WITH d AS (DELETE FROM cdr_batch b USING cdr_leg_once k WHERE k.node = b.node
		   AND k.sequence = b.sequence AND NOT b.imported RETURNING b.sequence)
	SELECT count(*) || ' ' || coalesce(min(sequence), 0) INTO v FROM d;
	RETURN v;
END $$;

-- The calls of call_batch stored already (same node, call_id and start) are
-- deleted from it; returns 'count first_call_id' of those deleted.
CREATE OR REPLACE FUNCTION cdrflow_drop_stored_calls() RETURNS text
LANGUAGE plpgsql SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
	v text;
BEGIN
	WITH d AS (DELETE FROM call_batch b USING call k WHERE k.node = b.node AND
		   k.call_id = b.call_id AND k.start = b.start RETURNING b.call_id)
	SELECT count(*) || ' ' || coalesce(min(call_id), '') INTO v FROM d;
	RETURN v;
END $$;
