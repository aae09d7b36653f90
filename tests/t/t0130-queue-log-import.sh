#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='cdrflow-etl import-queue-log: queue_log parsed in C gives what the SQL parser gives; bad lines refused with their number'
. "$(dirname "$0")/../lib/test-lib.sh"
ETL=$CDRFLOW_BUILD/cdrflow-etl
[ -x "$ETL" ] || bail_out "no $ETL (run make)"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || bail_out "PostgreSQL server binaries are not installed (scripts/install-deps.sh)"
QLOG=$CDRFLOW_SHARED/captures/s04_queue/queue_log
[ -r "$QLOG" ] || bail_out "no queue_log in the s04 capture ($QLOG)"
start_private_pg
"$ETL" migrate >/dev/null 2>&1 || bail_out "migrate failed"

q() { psql -X -Atc "$1"; }
# the SQL parser (psql users): import_sql NODE FILE -> number of new lines
import_sql() {
	printf '\\set content `cat %s`\nSELECT cdrflow_import_queue_log(%s, :%s);\n' "$2" "'$1'" "'content'" >imp.sql &&
	psql -X -At -v ON_ERROR_STOP=1 -f imp.sql
}
# everything the import derives for NODE, without the node and the ids
derived() {
	q "select time, callid, queuename, agent, event, data, line_no from queue_log_line where node = '$1'
		order by 1, 2, 3, 4, 5, 6" &&
	q "select source, queue, caller_uniqueid, caller_num, join_time, join_position, connect_time, agent,
		agent_uniqueid, hold_s, ring_s, exit_time, exit_reason, exit_wait_s, complete_time, talk_s,
		complete_reason from queue_call where node = '$1' order by caller_uniqueid, queue, join_time" &&
	q "select source, queue, caller_uniqueid, agent, agent_uniqueid, called_at, connected_at, hold_s, ring_s,
		ring_end_at, ring_ms, ring_result, completed_at, talk_s, complete_reason from queue_agent_call
		where node = '$1' order by caller_uniqueid, agent, coalesce(ring_end_at, connected_at)" &&
	q "select source, agent, queue, at, kind, reason, seq from queue_agent_state where node = '$1'
		order by at, agent, kind"
}
cat >synth.queue_log <<'X'
1795300000|NONE|q1|Zed|ADDMEMBER|
1795300100|c1|q1|NONE|ENTERQUEUE||100|1
1795300105|c1|q1|Zed|CONNECT|5|m1|5
1795300165|c1|q1|Zed|COMPLETECALLER|5|60|1
1795300200|NONE|q1|Zed|PAUSE|lunch
1795300800|NONE|q1|Zed|UNPAUSE|
1795301000|c2|q1|NONE|ENTERQUEUE||101|1
1795301003|c2|q1|NONE|EXITWITHKEY|5|1|1|3
1795301010|c3|q1|NONE|ENTERQUEUE|x|"quoted, {braces}"| 2 
1795301011|c3|q1|Ann|RINGNOANSWER|3000
1795301020|c3|q1|Ann|CONNECT|10|m3|1
1795301090|c3|q1|Ann|BLINDTRANSFER|7000|ctx|10|70|1
not a queue_log line

1795301200|NONE|q1|Zed|REMOVEMEMBER|
X
printf '1795300000|c9|q1|NONE|ENTERQUEUE||100|1\r\n1795300003|c9|q1|NONE|ABANDON|1|1|three\r\n' >bad.queue_log

test_expect_success 'the capture and a synthetic log: C and SQL parsers derive the same rows' '
	test "$(import_sql sql "$QLOG")" = "$(wc -l <"$QLOG")" &&
	"$ETL" import-queue-log --node c "$QLOG" >out &&
	grep -q "^imported $(wc -l <"$QLOG") new of $(wc -l <"$QLOG") event lines from " out &&
	test "$(import_sql sql synth.queue_log)" = 13 &&
	"$ETL" import-queue-log --node c synth.queue_log >out &&
	grep -q "^imported 13 new of 13 event lines from synth.queue_log (2 other lines skipped)" out &&
	derived sql >sql.rows && derived c >c.rows &&
	test_line_count sql.rows -gt 60 &&
	test_cmp sql.rows c.rows
'

test_expect_success 'importing the same file again adds nothing and changes nothing' '
	"$ETL" import-queue-log --node c "$QLOG" synth.queue_log >out &&
	test "$(grep -c "^imported 0 new of " out)" = 2 &&
	derived c >c.again && test_cmp c.rows c.again
'

test_expect_success 'text is kept byte for byte: quotes, commas, braces and blanks in the data fields' '
	test "$(q "select data[2] from queue_log_line where node = '"'"'c'"'"' and callid = '"'"'c3'"'"'
		and event = '"'"'ENTERQUEUE'"'"'")" = "\"quoted, {braces}\"" &&
	test "$(q "select join_position from queue_call where node = '"'"'c'"'"' and caller_uniqueid = '"'"'c3'"'"'")" = 2
'

test_expect_success 'a number SQL cannot read: refused with file:line, nothing imported (the SQL parser fails without a line)' '
	test_exit_code 65 "$ETL" import-queue-log --node bad bad.queue_log 2>err &&
	grep -q "bad.queue_log:2: ABANDON field 8 \"three\" is not a number" err &&
	test "$(q "select count(*) from queue_log_line where node = '"'"'bad'"'"'")" = 0 &&
	! import_sql bad2 bad.queue_log 2>sqlerr &&
	grep -q "invalid input syntax for type integer" sqlerr
'

test_expect_success 'bytes SQL would refuse (NUL, invalid UTF-8) are stored as U+FFFD, like every other input' '
	printf "1795302000|c\\000d|q1|NONE|ENTERQUEUE|\\377|100|1\\n" >bytes.queue_log &&
	"$ETL" import-queue-log --node b bytes.queue_log >out &&
	test "$(q "select callid || '"'"' '"'"'|| data[1] from queue_log_line where node = '"'"'b'"'"'")" = "c�d �"
'

test_expect_success 'usage: a file is required; a missing file is 66' '
	test_exit_code 64 "$ETL" import-queue-log 2>err && grep -q "import-queue-log needs at least one file" err &&
	test_exit_code 66 "$ETL" import-queue-log --node c nosuch.log 2>err && grep -q "cannot open \"nosuch.log\"" err
'

test_done
