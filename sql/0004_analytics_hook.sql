-- 0004_analytics_hook.sql - the place analytics plug into every load batch.
--
-- cdrflow-etl calls cdrflow_after_batch(node, seq_lo, seq_hi) inside each
-- batch's transaction, after the batch's rows are in and before the
-- checkpoint moves, so whatever the steps write is exactly-once too.  While
-- it runs, the session's temporary tables cdr_batch and call_batch hold the
-- legs and calls of this batch (also already in cdr and call), and the
-- batch's events are the ami_event/cel rows of node with seq_lo < seq <=
-- seq_hi.  Each analytics family registers its step function in
-- analytics_step; steps run in ord order and take (text, bigint, bigint).
CREATE TABLE analytics_step (
	fn   text PRIMARY KEY,
	ord  integer NOT NULL
);

CREATE FUNCTION cdrflow_after_batch(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	s record;
BEGIN
	FOR s IN SELECT fn FROM analytics_step ORDER BY ord, fn LOOP
		EXECUTE format('SELECT %I($1, $2, $3)', s.fn) USING p_node, p_seq_lo, p_seq_hi;
	END LOOP;
END $$;

CREATE INDEX ami_event_node_seq_idx ON ami_event (node, seq);
CREATE INDEX cel_node_seq_idx ON cel (node, seq);
