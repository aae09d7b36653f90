#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='cdrflow-etl skip: an audited way past a corrupt record; one stuck node does not stop the others'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
[ -x "$ETL" ] || bail_out "no $ETL (run make)"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || skip_all "PostgreSQL server binaries are not installed"

PGDIR=$(mktemp -d /tmp/cdrflow-t2400.XXXXXX)
export CDRFLOW_PGPORT=$(free_port)
test_at_exit '"$TEST_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"'
eval "$("$TEST_ROOT/scripts/pg.sh" start "$PGDIR")" || bail_out "cannot start PostgreSQL"
"$ETL" migrate >/dev/null || bail_out "migrate failed"
S01=$(capture_path s01_answered) || bail_out "capture s01_answered not found"
q() { psql -Atc "$1"; }
TOTAL=$(xz -dcf "$S01" | grep -c '^Event: ')
CELS=$(xz -dcf "$S01" | grep -c '^Event: CEL'$'\r''$')

test_expect_success 'setup: nodes a (a flipped byte in segment 1) and b (intact), same capture' '
	write_config c.yaml segment_max_size=64KiB &&
	for n in a b; do cdrflow_collector -c c.yaml --replay "$S01" --spool sp --node $n >/dev/null || return 1; done &&
	printf "\377" | dd of=sp/a/0000000000000001.seg bs=1 seek=5000 conv=notrunc 2>/dev/null
'

test_expect_success 'node a stops at the corrupt record (65), node b sorted after it loads everything' '
	test_exit_code 65 "$ETL" --once --spool sp >out 2>err && cat err &&
	grep -q "node a: stopped: .*sp/a/0000000000000001.seg: offset [0-9]*: CRC mismatch" err &&
	grep -q "1 node(s) stopped at corrupt data (first: a)" err &&
	test "$(q "select count(*) from cel where node = '"'"'b'"'"'")" = "$CELS" &&
	test "$(q "select last_seq from etl_checkpoint where node = '"'"'b'"'"'")" = "$TOTAL" &&
	off=$(sed -n "s/.*0000000000000001\.seg: offset \([0-9]*\): CRC.*/\1/p" err | head -1) &&
	test "$(q "select seg_offset from etl_checkpoint where node = '"'"'a'"'"'")" = "$off"
'

test_expect_success 'skip refuses a position where the reader does not stop (64), records nothing' '
	test_exit_code 64 "$ETL" skip --node a --segment 1 --offset $((off + 1)) --spool sp 2>err && cat err &&
	grep -q "first corrupt position after the checkpoint is segment 1 offset $off" err &&
	test_exit_code 64 "$ETL" skip --node b --segment 1 --offset 128 --spool sp 2>err &&
	test_exit_code 64 "$ETL" skip --node a --segment 1 --spool sp 2>err &&
	test "$(q "select count(*) from etl_skip")" = 0
'

test_expect_success 'skip at the reported position: recorded with the bytes lost, who and why, and logged' '
	"$ETL" skip --node a --segment 1 --offset $off --spool sp >out 2>err && cat out err &&
	bytes=$(sed -n "s/.* bytes_lost=\([0-9]*\) .*/\1/p" out) && test "$bytes" -gt 0 &&
	grep -q "warning: node a: skip recorded by $(q "select current_user") at segment 1 offset $off: $bytes bytes lost" err &&
	test "$(q "select node || '"'"' '"'"' || segno || '"'"' '"'"' || seg_offset || '"'"' '"'"' || bytes_lost || '"'"' '"'"' || skipped_by from etl_skip")" = "a 1 $off $bytes $(q "select current_user")" &&
	q "select reason from etl_skip" | grep -q "CRC mismatch" &&
	"$ETL" skip --node a --segment 1 --offset $off --spool sp >out &&
	grep -q "recorded already" out && test "$(q "select count(*) from etl_skip")" = 1
'

test_expect_success 'the next run passes it (logged), loads the rest of node a: one record lost, no duplicate' '
	"$ETL" --once --spool sp >out 2>err && cat err &&
	grep -q "node a: passing segment 1 offset $off" err &&
	test "$(q "select events from etl_checkpoint where node = '"'"'a'"'"'")" = $((TOTAL - 1)) &&
	test "$(q "select last_seq from etl_checkpoint where node = '"'"'a'"'"'")" = "$TOTAL" &&
	test "$(q "select count(*) - count(distinct seq) from cel where node = '"'"'a'"'"'")" = 0 &&
	"$ETL" --once --spool sp >out 2>err && grep -q "^etl: events=0 " out && ! grep -q passing err
'

test_expect_success 'lost records (a cut segment): skip records how many, and loading goes on' '
	for n in a b; do cdrflow_collector -c c.yaml --replay "$S01" --spool g --node $n >/dev/null || return 1; done &&
	cut=$("$CDRFLOW_COLLECTOR" --list --spool g --node a | awk "\$3 == 2 {print \$4}" | sed -n 2p) &&
	truncate -s "$cut" g/a/0000000000000002.seg &&
	q "truncate etl_checkpoint, etl_skip, cel, ami_event, cdr, call" >/dev/null &&
	test_exit_code 65 "$ETL" --once --spool g 2>err && cat err &&
	set -- $(sed -n "s/.*0000000000000003\.seg: offset \([0-9]*\): sequence gap: expected sequence \([0-9]*\), found \([0-9]*\) .*/\1 \2 \3/p" err | head -1) &&
	test "$1" = 128 && k=$(($3 - $2)) && test $k -gt 0 &&
	"$ETL" skip --node a --segment 3 --offset 128 --spool g >out && cat out &&
	grep -q "bytes_lost=0 records_lost=$k resume=3:128" out &&
	test "$(q "select records_lost from etl_skip")" = $k &&
	"$ETL" --once --spool g >out 2>err &&
	test "$(q "select events from etl_checkpoint where node = '"'"'a'"'"'")" = $((TOTAL - k))
'

test_expect_success '--follow: a stuck node is logged once, the other node keeps loading' '
	q "truncate etl_checkpoint, etl_skip, cel, ami_event, cdr, call" >/dev/null &&
	cdrflow_collector -c c.yaml --replay "$S01" --spool f --node a >/dev/null &&
	printf "\377" | dd of=f/a/0000000000000001.seg bs=1 seek=5000 conv=notrunc 2>/dev/null &&
	printf "etl:\n  poll_interval: 100ms\n" >follow.yaml || return 1
	"$ETL" --follow -c follow.yaml --spool f >follow.out 2>follow.err &
	fpid=$! && register_pid $fpid &&
	cdrflow_collector -c c.yaml --replay "$S01" --spool f --node b >/dev/null &&
	wait_for "test \$(psql -Atc \"select count(*) from cel where node = '"'"'b'"'"'\") = $CELS" 30 &&
	sleep 1 && kill -TERM $fpid; wait $fpid; rc=$?; cat follow.err; echo "follow exit $rc"; test $rc = 0 &&
	test "$(grep -c "node a: stopped" follow.err)" = 1
'

test_done
