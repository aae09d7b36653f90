#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='cdrflow-etl skip, then kill -9 in the middle of the load and resume: the same rows as a load never killed (nothing lost beyond the skipped record, nothing twice)'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
[ -x "$ETL" ] || bail_out "no $ETL (run make)"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || bail_out "PostgreSQL server binaries are not installed (scripts/install-deps.sh)"
start_private_pg
"$ETL" migrate >/dev/null || bail_out "migrate failed"
q() { psql -X -Atc "$1"; }
CAPTURES="s01_answered s03_sip_rtp s04_queue s05_transfer s07_trunk_tenant"
# small batches: many transactions, so a kill lands between and inside them
printf 'etl:\n  batch_events: 100\n  ami_event_store: all\ncdr:\n  unanswered: yes\n  congestion: yes\n  endbeforehexten: no\n' >etl.yaml

# replay NODE: the five bundled captures into node NODE, a flipped byte in segment 1
replay() {
	for s in $CAPTURES; do
		cdrflow_collector -c c.yaml --replay "$TEST_ROOT/tests/data/$s.ami.raw.xz" --spool sp --node "$1" >/dev/null ||
			return 1
	done &&
	printf "\377" | dd of="sp/$1/0000000000000001.seg" bs=1 seek=5000 conv=notrunc 2>/dev/null
}
# stuck_at NODE: run --once (65), skip at the reported position; prints the offset
stuck_skip() {
	test_exit_code 65 "$ETL" --once -c etl.yaml --spool sp >/dev/null 2>err &&
	off=$(sed -n "s|.*node $1: stopped: .*sp/$1/0000000000000001\.seg: offset \([0-9]*\): CRC.*|\1|p" err | head -1) &&
	test -n "$off" &&
	"$ETL" skip --node "$1" --segment 1 --offset "$off" --spool sp >skip.$1 &&
	grep -q "bytes_lost=[1-9]" skip.$1
}
# rows NODE: every row the ETL wrote for NODE, without the node name
rows() {
	q "select to_jsonb(x) - 'node' from cel x where node = '$1' order by seq" &&
	# an event without a Timestamp (FullyBooted) has the time the replay read it
	q "select to_jsonb(x) - 'node' - case when fields ? 'Timestamp' then '' else 'eventtime' end
		from ami_event x where node = '$1' order by seq" &&
	for t in cdr call; do
		q "select to_jsonb(x) - 'node' from $t x where node = '$1' order by (to_jsonb(x) - 'node')::text" || return 1
	done

	q "select events, last_seq from etl_checkpoint where node = '$1'"
}

test_expect_success 'control: node c, one corrupt record skipped, loaded in one go' '
	write_config c.yaml segment_max_size=64KiB &&
	replay c && stuck_skip c &&
	"$ETL" --once -c etl.yaml --spool sp >out 2>err && grep -q "node c: passing segment 1 offset" err &&
	set -- $(q "select events, last_seq from etl_checkpoint where node = '"'"'c'"'"'" | tr "|" " ") &&
	echo "node c: events=$1 last_seq=$2" && test "$1" -gt 7000 &&
	test "$2" = $(($1 + 1)) &&
	rows c >c.rows && wc -l <c.rows && test_line_count c.rows -gt 3000
'

test_expect_success 'node a: the same spool and skip; the load killed with -9 in the middle of a batch' '
	replay a && stuck_skip a && test "$(q "select count(*) from etl_skip")" = 2 &&
	e0=$(q "select events from etl_checkpoint where node = '"'"'a'"'"'") &&
	# a slow database: every checkpoint write (one per batch) waits 0.2 s inside its transaction
	psql -X -q -v ON_ERROR_STOP=1 -c "create function t0132_slow() returns trigger language plpgsql as
		\$\$ begin perform pg_sleep(0.2); return new; end \$\$;
		create trigger t0132_slow before insert or update on etl_checkpoint
		for each row execute function t0132_slow()" &&
	{ "$ETL" --once -c etl.yaml --spool sp >killed.out 2>killed.err & } &&
	pid=$! && register_pid $pid &&
	wait_for "test \$(psql -X -Atc \"select events from etl_checkpoint where node = '"'"'a'"'"'\") -ge $((e0 + 1000))" 60 &&
	wait_for "psql -X -Atc \"select 1 from pg_stat_activity where application_name = '"'"'cdrflow-etl'"'"' and state = '"'"'active'"'"' and query like '"'"'%etl_checkpoint%'"'"'\" | grep -q 1" 10 &&
	kill -9 $pid && { wait $pid; test $? = 137; } &&
	cat killed.err &&
	psql -X -q -c "drop trigger t0132_slow on etl_checkpoint; drop function t0132_slow()" &&
	e1=$(q "select events from etl_checkpoint where node = '"'"'a'"'"'") &&
	echo "events before the skip $e0, at the kill $e1" &&
	test "$e1" -gt "$e0" && test "$e1" -lt "$(q "select events from etl_checkpoint where node = '"'"'c'"'"'")"
'

test_expect_success 'resume: node a ends with exactly the rows of node c, nothing twice, the skip passed once' '
	"$ETL" --once -c etl.yaml --spool sp >out 2>err && cat out &&
	! grep -q "node a: passing" err &&
	rows a >a.rows && test_cmp c.rows a.rows &&
	test "$(q "select count(*) - count(distinct seq) from cel where node = '"'"'a'"'"'")" = 0 &&
	test "$(q "select count(*) - count(distinct seq) from ami_event where node = '"'"'a'"'"'")" = 0 &&
	test "$(q "select count(*) from etl_skip where node = '"'"'a'"'"'")" = 1 &&
	"$ETL" --once -c etl.yaml --spool sp >out 2>err && grep -q "^etl: events=0 " out
'

test_done
