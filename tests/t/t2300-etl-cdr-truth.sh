#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='cdr legs rebuilt from the AMI stream equal the Master.csv Asterisk wrote (the truth test)'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
[ -x "$ETL" ] || bail_out "no $ETL (run make)"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || skip_all "PostgreSQL server binaries are not installed"
capture_path s01_answered >/dev/null || bail_out "captures not found"

PGDIR=$(mktemp -d /tmp/cdrflow-t2300.XXXXXX)
export CDRFLOW_PGPORT=$(free_port)
test_at_exit '"$TEST_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"'
eval "$("$TEST_ROOT/scripts/pg.sh" start "$PGDIR")" || bail_out "cannot start PostgreSQL"
"$ETL" migrate >/dev/null || bail_out "migrate failed"

STRIP=$TEST_ROOT/tests/truth/strip-cdr.py
COMPARE=$TEST_ROOT/tests/truth/cdr-diff.py
SCENARIOS="s01_answered s02_unanswered s03_sip_rtp s03b_sip_rtp_impaired s04_queue s05_transfer s06_fork
s07_trunk_tenant s08_burst"
q() { psql -Atc "$1"; }
oracle() { echo "$(dirname "$(capture_path "$1")")/cdr.csv"; }
# the captures were made with these cdr.conf settings (ASTERISK_SETUP.md)
cat >etl.yaml <<'YAML'
cdr:
  unanswered: yes
  congestion: yes
  endbeforehexten: no
YAML
for f in small:100 grace:0; do # small batches; grace period
	name=${f%%:*} batch=${f#*:}
	{
		[ "$batch" != 0 ] && printf 'etl:\n  batch_events: %s\n' "$batch"
		[ "$name" = grace ] && printf 'etl:\n  grace_period: 2min\n'
		cat etl.yaml
	} >$name.yaml
done
export_legs() { # NODE: the node's legs as Master.csv (newcdrcolumns) rows
	psql -Atc "\\copy (select accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp, lastdata,
		to_char(calldate at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
		coalesce(to_char(answer at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'), ''),
		to_char(\"end\" at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'), duration, billsec, disposition,
		case amaflags when 1 then 'OMIT' when 2 then 'BILLING' when 3 then 'DOCUMENTATION' else 'Unknown' end,
		uniqueid, userfield, peeraccount, linkedid, sequence from cdr where node = '$1' order by sequence)
		to stdout with csv"
}

test_expect_success 'every scenario, Cdr events stripped, loads in one run' '
	for s in $SCENARIOS; do
		"$STRIP" "$(capture_path $s)" $s.raw &&
		! grep -q "^Event: Cdr" $s.raw &&
		cdrflow_collector --replay $s.raw --spool spool --node $s >/dev/null || return 1
	done &&
	"$ETL" --once -c etl.yaml --spool spool >out &&
	grep "^etl: " out &&
	test "$(q "select count(*) from cdr where incomplete")" = 0
'

test_expect_success 'each leg equals the row Asterisk wrote on every column but sequence (boundary legs <= 1.5 %)' '
	legs=0 boundary=0 &&
	for s in $SCENARIOS; do
		export_legs $s >$s.ours &&
		"$COMPARE" --label $s "$(oracle $s)" $s.ours >$s.cmp; rc=$?
		cat $s.cmp &&
		test $rc = 0 &&
		line=$(tail -1 $s.cmp) &&
		legs=$((legs + $(echo "$line" | sed "s/.* legs=\\([0-9]*\\).*/\\1/"))) &&
		boundary=$((boundary + $(echo "$line" | sed "s/.* near=\\([0-9]*\\).*/\\1/"))) || return 1
	done &&
	say "all scenarios: legs=$legs boundary=$boundary" &&
	test $((boundary * 1000)) -le $((legs * 15))
'

test_expect_success 'calls: one per conversation, legs linked, transfers merged' '
	test "$(q "select count(*) from cdr where call_id is null")" = 0 &&
	test "$(q "select count(*) from call where node = '"'"'s01_answered'"'"'")" = 6 &&
	test "$(q "select sum(legs) from call")" = "$(q "select count(*) from cdr")" &&
	test "$(q "select count(*) from call where node = '"'"'s01_answered'"'"' and outcome = '"'"'answered'"'"'")" = 6 &&
	test "$(q "select sum(transfers) from call where node = '"'"'s05_transfer'"'"'")" -ge 2 &&
	test "$(q "select count(*) from call where cardinality(linkedids) > 1")" -ge 1 &&
	test "$(q "select count(*) from (select call_id from call group by node, call_id having count(*) > 1) d")" = 0
'

test_expect_success 'a stream fed in pieces, small batches, gives the same legs (open calls carried)' '
	"$STRIP" "$(capture_path s05_transfer)" piece 4 &&
	for i in 1 2 3 4; do
		cdrflow_collector --replay piece.$i --spool pieces --node pieced >/dev/null &&
		"$ETL" --once -c small.yaml --spool pieces >/dev/null || return 1
	done &&
	export_legs pieced >pieced.ours &&
	"$COMPARE" --label pieced "$(oracle s05_transfer)" pieced.ours &&
	test "$(q "select count(*) from call where node = '"'"'pieced'"'"'")" = \
	     "$(q "select count(*) from call where node = '"'"'s05_transfer'"'"'")"
'

test_expect_success 'kill -9 at any moment: the legs are still exactly Asterisk'"'"'s, none twice' '
	cdrflow_collector --replay s06_fork.raw --spool crash --node crashed >/dev/null &&
	cdrflow_collector --replay s04_queue.raw --spool crash --node crashed >/dev/null &&
	for i in 1 2 3 4 5 6 7 8; do
		kill_after 0.9 "$ETL" --once -c small.yaml --spool crash
	done &&
	"$ETL" --once -c small.yaml --spool crash >/dev/null &&
	export_legs crashed >crashed.ours &&
	cat "$(oracle s06_fork)" "$(oracle s04_queue)" >crashed.oracle &&
	"$COMPARE" --label crashed crashed.oracle crashed.ours &&
	test "$(q "select count(*) - count(distinct (uniqueid, dstchannel, calldate, sequence)) from cdr where node = '"'"'crashed'"'"'")" = 0
'

test_expect_success 'calls that never end are closed after the grace period, flagged incomplete' '
	"$STRIP" "$(capture_path s01_answered)" half 2 &&
	cdrflow_collector --replay half.1 --spool lost --node lost >/dev/null &&
	cdrflow_collector --replay s08_burst.raw --spool lost --node lost >/dev/null &&
	"$ETL" --once -c grace.yaml --spool lost >/dev/null &&
	test "$(q "select count(*) from cdr where node = '"'"'lost'"'"' and incomplete")" -gt 0 &&
	test "$(q "select count(*) from call where node = '"'"'lost'"'"' and incomplete")" -gt 0 &&
	test "$(q "select count(*) from cdr where node = '"'"'lost'"'"' and not incomplete")" = \
	     "$(wc -l <"$(oracle s08_burst)")"
'

test_expect_success 'an Originate to an application with no OriginateResponse: warned once, kept in input_caveat' '
	"$STRIP" "$(capture_path testsuite/nocdr)" nocdr.raw &&
	cdrflow_collector --replay nocdr.raw --spool caveat --node ts_nocdr >/dev/null &&
	"$ETL" --once -c etl.yaml --spool caveat >cav.out 2>cav.err &&
	test "$(grep -c "node ts_nocdr: 1 leg(s), e.g. Local/1@default-00000000;1: lastapp/lastdata unknown.*Async: true" cav.err)" = 1 &&
	test "$(q "select count(*) from input_caveat where node = '"'"'ts_nocdr'"'"' and input = '"'"'originate_app'"'"' and ami_name = '"'"'OriginateResponse'"'"' and affects_rows")" = 1 &&
	"$ETL" --once -c etl.yaml --spool caveat 2>cav2.err &&
	! grep -q "lastapp/lastdata unknown" cav2.err
'

test_expect_success 'every shared capture (v2-v4, a22, Asterisk testsuite) on every column, testsuite expectations too' '
	OUT=$PWD/all "$TEST_ROOT/tests/truth/truth-all.sh" "$CDRFLOW_BUILD" >truth.table; rc=$?
	cat truth.table &&
	test $rc = 0 &&
	test "$(grep -c " ok$" truth.table)" -ge 20
'

test_done
