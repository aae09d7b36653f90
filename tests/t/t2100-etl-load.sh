#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='cdrflow-etl --once: real captures into a real PostgreSQL, exactly once'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
[ -x "$ETL" ] || bail_out "no $ETL (run make)"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || skip_all "PostgreSQL server binaries are not installed"

PGDIR=$(mktemp -d /tmp/cdrflow-t2100.XXXXXX)
export CDRFLOW_PGPORT=$(free_port)
test_at_exit '"$TEST_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"'
eval "$("$TEST_ROOT/scripts/pg.sh" start "$PGDIR")" || bail_out "cannot start PostgreSQL"
"$ETL" migrate >/dev/null || bail_out "migrate failed"

S01=$(capture_path s01_answered) && S04=$(capture_path s04_queue) && S08=$(capture_path s08_burst) ||
	bail_out "captures not found"
count_events() { # CAPTURE [EVENT]: Event: blocks in a capture
	if [ -n "${2:-}" ]; then xz -dcf "$1" | grep -c "^Event: $2"$'\r'"\$"; else xz -dcf "$1" | grep -c '^Event: '; fi
}
q() { psql -Atc "$1"; }

test_expect_success 'every CEL event and every kept analytics event is loaded' '
	cdrflow_collector --replay "$S01" --spool spool --node pbx1 >/dev/null &&
	"$ETL" --once --spool spool >out &&
	grep -q "^etl: events=$(count_events "$S01") cel=$(count_events "$S01" CEL) " out &&
	test "$(q "select count(*) from cel")" = "$(count_events "$S01" CEL)" &&
	# the default etl.ami_event_store (analytics): the events the analytics read
	kept=0 &&
	for e in RTCPSent RTCPReceived QueueCallerJoin QueueCallerLeave QueueCallerAbandon AgentCalled AgentConnect \
		AgentComplete AgentRingNoAnswer QueueMemberAdded QueueMemberRemoved QueueMemberPause QueueMemberPaused \
		Hangup HangupRequest SoftHangupRequest; do
		kept=$((kept + $(count_events "$S01" $e || :)))
	done &&
	test "$kept" -gt 0 &&
	test "$(q "select count(*) from ami_event")" = "$kept"
'

test_expect_success 'CEL rows carry microsecond times, ids and the source position' '
	test "$(q "select count(*) from cel where eventtime <> date_trunc('"'"'second'"'"', eventtime)")" -gt 0 &&
	test "$(q "select count(distinct linkedid) from cel where eventtype = '"'"'LINKEDID_END'"'"'")" = 6 &&
	test "$(q "select min(seq) || '"'"' '"'"' || count(*) from cel where node = '"'"'pbx1'"'"' and segno >= 1 and seg_offset >= 128")" != "" &&
	test "$(q "select count(*) from cel where amaflags = 3")" = "$(count_events "$S01" CEL)"
'

test_expect_success 'ami_event keeps every field, repeated keys as arrays' '
	test "$(q "select fields->>'"'"'Cause'"'"' from ami_event where event = '"'"'Hangup'"'"' limit 1")" != "" &&
	test "$(q "select count(*) from ami_event where jsonb_typeof(fields->'"'"'ChanVariable'"'"') = '"'"'array'"'"'")" -gt 0
'

test_expect_success 'a second run loads nothing (checkpoint)' '
	"$ETL" --once --spool spool >out &&
	grep -q "^etl: events=0 " out &&
	test "$(q "select count(*) from cel")" = "$(count_events "$S01" CEL)"
'

test_expect_success 'new events appended later are loaded once' '
	cdrflow_collector --replay "$S04" --spool spool --node pbx1 >/dev/null &&
	"$ETL" --once --spool spool >out &&
	grep -q "^etl: events=$(count_events "$S04") " out &&
	test "$(q "select count(*) from cel")" = $(( $(count_events "$S01" CEL) + $(count_events "$S04" CEL) )) &&
	test "$(q "select count(*) - count(distinct (node, seq)) from cel")" = 0
'

test_expect_success 'kill -9 in the middle of loads never loses or duplicates a row' '
	cdrflow_collector --replay "$S08" --spool spool --node burst >/dev/null &&
	for delay in 0.3 0.6 0.9; do
		"$ETL" --once --spool spool -c /dev/null >/dev/null 2>&1 &
		pid=$! && sleep $delay && kill -9 $pid; wait $pid 2>/dev/null
	done;
	"$ETL" --once --spool spool >out &&
	test "$(q "select count(*) from cel where node = '"'"'burst'"'"'")" = "$(count_events "$S08" CEL)" &&
	test "$(q "select count(*) - count(distinct seq) from cel where node = '"'"'burst'"'"'")" = 0 &&
	test "$(q "select last_seq from etl_checkpoint where node = '"'"'burst'"'"'")" = "$(count_events "$S08")"
'

test_expect_success 'a corrupt record stops the run at its exact position, checkpoint before it' '
	cdrflow_collector --replay "$S01" --spool spool2 --node n >/dev/null &&
	seg=spool2/n/0000000000000001.seg &&
	printf "\377" | dd of=$seg bs=1 seek=5000 conv=notrunc 2>/dev/null &&
	test_exit_code 65 "$ETL" --once --spool spool2 2>err &&
	grep -q "0000000000000001.seg: offset [0-9]*: CRC mismatch" err &&
	off=$(sed -n "s/.*\.seg: offset \([0-9]*\):.*/\1/p" err) &&
	test "$(q "select seg_offset from etl_checkpoint where node = '"'"'n'"'"'")" = "$off"
'

test_expect_success 'a database that is down is "retry later" (69)' '
	PGPORT=1 test_exit_code 69 "$ETL" --once --spool spool 2>err &&
	grep -q "cannot connect" err
'

test_expect_success 'a schema that is not migrated is refused (78)' '
	createdb -h "$PGHOST" -p "$PGPORT" empty 2>/dev/null;
	PGDATABASE=empty test_exit_code 78 "$ETL" --once --spool spool 2>err &&
	grep -q "cdrflow-etl migrate" err
'

test_expect_success '--follow loads new records as they arrive, survives a database restart, stops on SIGTERM' '
	printf "etl:\n  poll_interval: 100ms\n" >follow.yaml || return 1
	"$ETL" --follow -c follow.yaml --spool spool3 >follow.out 2>follow.err &
	fpid=$! && register_pid $fpid &&
	cdrflow_collector --replay "$S01" --spool spool3 --node f1 >/dev/null &&
	wait_for "test \$(psql -Atc \"select count(*) from cel where node = '"'"'f1'"'"'\") = $(count_events "$S01" CEL)" 30 &&
	"$TEST_ROOT/scripts/pg.sh" restart "$PGDIR" >/dev/null &&
	cdrflow_collector --replay "$S04" --spool spool3 --node f1 >/dev/null &&
	wait_for "test \$(psql -Atc \"select count(*) from cel where node = '"'"'f1'"'"'\") = $(( $(count_events "$S01" CEL) + $(count_events "$S04" CEL) ))" 60 &&
	kill -TERM $fpid && { wait $fpid; rc=$?; echo "follow exit $rc"; test $rc = 0; } &&
	grep -q "info: stopped" follow.err &&
	test "$(q "select count(*) - count(distinct seq) from cel where node = '"'"'f1'"'"'")" = 0 &&
	grep -q "^etl: events=" follow.out
'

test_expect_success 'a config file holding only the cdr section is valid' '
	printf "cdr:\n  unanswered: yes\n  congestion: yes\n  endbeforehexten: no\n  initiatedseconds: no\n" >cdr.yaml &&
	"$ETL" --once -c cdr.yaml --spool spool >out &&
	grep -q "^etl: events=0 " out
'

test_expect_success 'etl.ami_event_store: all stores every event the exclude list keeps, Cdr events included' '
	cdrflow_collector --replay "$S01" --spool spool-all --node all1 >/dev/null &&
	printf "etl:\n  ami_event_store: all\n" >all.yaml &&
	"$ETL" --once -c all.yaml --spool spool-all >/dev/null &&
	excluded=0 &&
	for e in CEL VarSet Newexten Newstate NewCallerid NewConnectedLine NewAccountCode; do
		excluded=$((excluded + $(count_events "$S01" $e))) || return 1
	done &&
	test "$(q "select count(*) from ami_event where node = '"'"'all1'"'"'")" = $(( $(count_events "$S01") - excluded )) &&
	test "$(q "select count(*) from ami_event where node = '"'"'all1'"'"' and event = '"'"'Cdr'"'"'")" = "$(count_events "$S01" Cdr)"
'

test_done
