-- 0040: the queue_log importer's parsing moves to C (cdrflow-etl
-- import-queue-log, etl/queuelog.c, fuzzed by tests/fuzz/etl/fuzz_queuelog.c).
--
-- The import is split in three functions, each stated whole here:
--   cdrflow_queue_log_in_table()   the session's staging table queue_log_in
--                                  (one row per event line, as parsed)
--   cdrflow_queue_log_apply(node)  queue_log_in -> queue_log_line, the
--                                  visits, member attempts and states (the
--                                  second half of 0005's function, unchanged)
--   cdrflow_import_queue_log(node, content)  the SQL parser, kept for psql
--                                  users: parses content into queue_log_in,
--                                  then applies it (same result as before)

CREATE FUNCTION cdrflow_queue_log_in_table() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	CREATE TEMP TABLE IF NOT EXISTS queue_log_in (line_no integer, time timestamptz, callid text, queuename text,
		agent text, event text, data text[]) ON COMMIT DROP;
	TRUNCATE queue_log_in;
END $$;

-- The lines of queue_log_in (one file) into the warehouse.  Lines already
-- imported are skipped; the visits of every caller the file mentions are
-- rebuilt from all its lines.  Returns the number of new lines.
CREATE FUNCTION cdrflow_queue_log_apply(p_node text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	n integer;
BEGIN
	WITH ins AS (
		INSERT INTO queue_log_line (node, time, callid, queuename, agent, event, data, line_no)
		SELECT DISTINCT ON (time, callid, queuename, agent, event, data)
		       p_node, time, callid, queuename, agent, event, data, line_no
		FROM queue_log_in ORDER BY time, callid, queuename, agent, event, data, line_no
		ON CONFLICT DO NOTHING RETURNING 1)
	SELECT count(*) INTO n FROM ins;

	-- rebuild the callers this file mentions
	DELETE FROM queue_agent_call WHERE source = 'queue_log' AND node = p_node
	  AND caller_uniqueid IN (SELECT callid FROM queue_log_in);
	DELETE FROM queue_call WHERE source = 'queue_log' AND node = p_node
	  AND caller_uniqueid IN (SELECT callid FROM queue_log_in);
	PERFORM cdrflow_queue_ev_table();
	INSERT INTO queue_ev (kind, node, queue, caller_uniqueid, caller_num, at, seq, agent, agent_uniqueid, pos,
		hold_s, ring_s, ring_ms, talk_s, wait_s, reason)
	SELECT CASE WHEN event = 'ENTERQUEUE' THEN 'join'
		    WHEN event = 'CONNECT' THEN 'connect'
		    WHEN event IN ('COMPLETECALLER', 'COMPLETEAGENT', 'BLINDTRANSFER', 'ATTENDEDTRANSFER') THEN 'complete'
		    WHEN event IN ('ABANDON', 'EXITWITHTIMEOUT', 'EXITEMPTY', 'EXITWITHKEY', 'WITHDRAW') THEN 'exit'
		    WHEN event = 'RINGNOANSWER' THEN 'ringnoanswer'
		    WHEN event = 'RINGCANCELED' THEN 'canceled' END,
	       node, queuename, callid,
	       CASE WHEN event = 'ENTERQUEUE' THEN data[2] END,
	       time, row_number() OVER (ORDER BY time, line_no),
	       nullif(agent, 'NONE'),
	       CASE WHEN event = 'CONNECT' THEN nullif(data[2], '') END,
	       CASE WHEN event = 'ENTERQUEUE' THEN nullif(data[3], '')::int
		    WHEN event IN ('ABANDON', 'EXITWITHTIMEOUT', 'EXITEMPTY', 'WITHDRAW') THEN nullif(data[1], '')::int
		    WHEN event = 'EXITWITHKEY' THEN nullif(data[2], '')::int END,
	       CASE WHEN event IN ('CONNECT', 'COMPLETECALLER', 'COMPLETEAGENT') THEN nullif(data[1], '')::int
		    WHEN event IN ('BLINDTRANSFER', 'ATTENDEDTRANSFER') THEN nullif(data[cardinality(data) - 2], '')::int END,
	       CASE WHEN event = 'CONNECT' THEN nullif(data[3], '')::int END,
	       CASE WHEN event IN ('RINGNOANSWER', 'RINGCANCELED') THEN nullif(data[1], '')::int END,
	       CASE WHEN event IN ('COMPLETECALLER', 'COMPLETEAGENT') THEN nullif(data[2], '')::int
		    WHEN event IN ('BLINDTRANSFER', 'ATTENDEDTRANSFER') THEN nullif(data[cardinality(data) - 1], '')::int END,
	       CASE WHEN event IN ('ABANDON', 'EXITWITHTIMEOUT', 'EXITEMPTY', 'WITHDRAW') THEN nullif(data[3], '')::int
		    WHEN event = 'EXITWITHKEY' THEN nullif(data[4], '')::int END,
	       CASE event WHEN 'COMPLETECALLER' THEN 'caller' WHEN 'COMPLETEAGENT' THEN 'agent'
		    WHEN 'BLINDTRANSFER' THEN 'transfer' WHEN 'ATTENDEDTRANSFER' THEN 'transfer'
		    WHEN 'ABANDON' THEN 'abandoned' WHEN 'EXITWITHTIMEOUT' THEN 'timeout'
		    WHEN 'EXITEMPTY' THEN 'exit_empty' WHEN 'EXITWITHKEY' THEN 'exit_key' WHEN 'WITHDRAW' THEN 'withdraw' END
	FROM queue_log_line
	WHERE node = p_node AND callid IN (SELECT callid FROM queue_log_in)
	  AND event IN ('ENTERQUEUE', 'CONNECT', 'COMPLETECALLER', 'COMPLETEAGENT', 'BLINDTRANSFER', 'ATTENDEDTRANSFER',
			'ABANDON', 'EXITWITHTIMEOUT', 'EXITEMPTY', 'EXITWITHKEY', 'WITHDRAW', 'RINGNOANSWER', 'RINGCANCELED');
	PERFORM cdrflow_queue_apply('queue_log');

	-- membership and pauses (whole node, rebuilt)
	DELETE FROM queue_agent_state WHERE source = 'queue_log' AND node = p_node;
	INSERT INTO queue_agent_state (source, node, agent, queue, at, kind, reason, seq)
	SELECT 'queue_log', node, agent, nullif(queuename, 'NONE'), time,
	       CASE WHEN event IN ('ADDMEMBER', 'AGENTLOGIN') THEN 'login'
		    WHEN event IN ('REMOVEMEMBER', 'AGENTLOGOFF') THEN 'logoff'
		    WHEN event IN ('PAUSE', 'PAUSEALL') THEN 'pause' ELSE 'unpause' END,
	       CASE WHEN event IN ('PAUSE', 'UNPAUSE') THEN nullif(data[1], '') END, line_no
	FROM queue_log_line
	WHERE node = p_node AND agent <> 'NONE'
	  AND event IN ('ADDMEMBER', 'REMOVEMEMBER', 'AGENTLOGIN', 'AGENTLOGOFF', 'PAUSE', 'UNPAUSE', 'PAUSEALL', 'UNPAUSEALL');
	RETURN n;
END $$;

-- Backfill from Asterisk's queue_log file: content is the file's text
-- (psql: \set content `cat queue_log` then SELECT cdrflow_import_queue_log('node', :'content')).
-- cdrflow-etl import-queue-log does the same with the parsing in C (and
-- refuses a line whose numbers SQL could not read, with its line number).
CREATE OR REPLACE FUNCTION cdrflow_import_queue_log(p_node text, p_content text) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM cdrflow_queue_log_in_table();
	INSERT INTO queue_log_in
	SELECT l.n, to_timestamp(p[1]::bigint), p[2], p[3], p[4], p[5], coalesce(p[6:], '{}')
	FROM regexp_split_to_table(p_content, E'\r?\n') WITH ORDINALITY AS l(line, n)
	CROSS JOIN LATERAL string_to_array(l.line, '|') AS p
	WHERE l.line ~ '^[0-9]+\|[^|]*\|[^|]*\|[^|]*\|[^|]+';
	RETURN cdrflow_queue_log_apply(p_node);
END $$;
