-- synth.sql - a synthetic warehouse for the speed tests of cdrflow-query
-- (tests/t/t5300-query-cli.sh, tests/bench/bench-query.sh): :calls calls of
-- two legs each, spread evenly over September and October 2026 (UTC), node
-- "synth", 50 tenants, 6 trunks, dialled numbers in 12 countries.
-- psql -v calls=500000 -f synth.sql
SELECT cdrflow_ensure_month('2026-09-15'), cdrflow_ensure_month('2026-10-15');

CREATE TEMP TABLE synth_cc (i int, cc text);
INSERT INTO synth_cc VALUES (0,'44'),(1,'49'),(2,'33'),(3,'1'),(4,'31'),(5,'882'),(6,'239'),(7,'39'),
	(8,'34'),(9,'86'),(10,'91'),(11,'7');

CREATE TEMP TABLE synth_call AS
SELECT g,
       'syn-' || g AS call_id,
       timestamptz '2026-09-01 00:00:00+00' + (g - 1) * ((61 * 86400.0) / :calls) * interval '1 second' AS start,
       'tenant' || (g % 50) AS tenant,
       'SIP/trunk' || (g % 6) AS trunk,
       '+' || c.cc || lpad(((g::bigint * 7919) % 1000000000)::text, 9, '0') AS e164,
       (g * 13) % 7 <> 0 AS answered,
       (g * 17) % 600 AS billsec
FROM generate_series(1, :calls) g
JOIN synth_cc c ON c.i = g % 12;

INSERT INTO call (call_id, node, start, "end", first_answer, direction, src, dst, tenant, legs, total_billsec,
		  duration, outcome, linkedids)
SELECT call_id, 'synth', start, start + (billsec + 5) * interval '1 s',
       CASE WHEN answered THEN start + interval '5 s' END, 'outbound', '1' || lpad((g % 1000)::text, 3, '0'),
       e164, tenant, 2, CASE WHEN answered THEN billsec ELSE 0 END, billsec + 5,
       CASE WHEN answered THEN 'answered' ELSE 'no_answer' END, ARRAY[call_id]
FROM synth_call;

-- in calldate order, near the order a load writes them in (a call's legs
-- when it ends): a period's range scan reads the table in order, as in the
-- field, not scattered over it
INSERT INTO cdr (calldate, answer, "end", src, dst, dst_e164, channel, dstchannel, lastapp, duration, billsec,
		 disposition, uniqueid, linkedid, node, tenant, call_id, direction)
SELECT * FROM (
SELECT start, CASE WHEN answered THEN start + interval '5 s' END, start + (billsec + 5) * interval '1 s',
       '1' || lpad((g % 1000)::text, 3, '0'), '00' || substr(e164, 2), e164,
       'Local/' || e164 || '@internal-' || lpad(to_hex(g), 8, '0') || ';2',
       trunk || '-' || lpad(to_hex(g), 8, '0'), 'Dial', billsec + 5, CASE WHEN answered THEN billsec ELSE 0 END,
       CASE WHEN answered THEN 'ANSWERED' ELSE 'NO ANSWER' END, call_id || '.1', call_id, 'synth', tenant, call_id,
       'outbound'
FROM synth_call
UNION ALL
SELECT start, CASE WHEN answered THEN start + interval '5 s' END, start + (billsec + 5) * interval '1 s',
       '1' || lpad((g % 1000)::text, 3, '0'), '00' || substr(e164, 2), e164, trunk || '-' || lpad(to_hex(g), 8, '0'),
       '', 'AppDial', billsec + 5, CASE WHEN answered THEN billsec ELSE 0 END,
       CASE WHEN answered THEN 'ANSWERED' ELSE 'NO ANSWER' END, call_id || '.2', call_id, 'synth', NULL, call_id,
       'inbound'
FROM synth_call
) l ORDER BY 1, 13;

ANALYZE call;
ANALYZE cdr;
