#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='cdrflow query flow --node: two nodes sharing linkedids are never merged'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
Q=$CDRFLOW_BUILD/cdrflow-query
DISPATCH=$CDRFLOW_BUILD/cdrflow
[ -x "$ETL" ] && [ -x "$Q" ] || bail_out "build first (make)"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || skip_all "PostgreSQL server binaries are not installed"

PGDIR=$(mktemp -d /tmp/cdrflow-t5500.XXXXXX)
export CDRFLOW_PGPORT=$(free_port)
test_at_exit '"$TEST_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"'
eval "$("$TEST_ROOT/scripts/pg.sh" start "$PGDIR")" || bail_out "cannot start PostgreSQL"
"$ETL" migrate >/dev/null || bail_out "migrate failed"
S01=$(capture_path s01_answered) || bail_out "capture s01_answered not found"
q() { psql -X -Atc "$1"; }

test_expect_success 'setup: the same real capture on two nodes (the same linkedids on both)' '
	cdrflow_collector --replay "$S01" --spool sp --node n1 >/dev/null &&
	cdrflow_collector --replay "$S01" --spool sp --node n2 >/dev/null &&
	"$ETL" --once --spool sp >/dev/null &&
	L=$(q "select linkedids[1] from call where node = '"'"'n1'"'"' order by start limit 1") && test -n "$L" &&
	test "$(q "select count(distinct node) from cel where linkedid = '"'"'$L'"'"'")" = 2
'

# the events of the call on one node, as flow selects them
events_on() {
	q "select count(*) from cel e where e.node = '$1' and e.uniqueid in (select uniqueid from cel
	   where node = '$1' and linkedid = any ((select linkedids from call where node = '$1' and linkedids @> array['$L'])::text[]))"
}

test_expect_success 'without --node: refused (64), naming both nodes' '
	test_exit_code 64 "$Q" flow "$L" >out 2>err && cat err &&
	grep -q "linkedid \"$L\" has events on 2 nodes (n1, n2): choose one with --node" err
'

test_expect_success '--node n1 and --node n2: each the events of its node only' '
	for n in n1 n2; do
		"$Q" flow "$L" --node $n >out.$n || return 1
		head -2 out.$n
		grep -q "^call [^ ]* (node $n, " out.$n &&
		grep -q "^first event .*, $(events_on $n) events, " out.$n || return 1
	done &&
	test "$(events_on n1)" -gt 0 &&
	test "$(sed 1d out.n1)" = "$(sed 1d out.n2)"
'

test_expect_success 'through the dispatcher; an unknown node is "no such linkedid" (66)' '
	"$DISPATCH" query flow "$L" --node n2 >out && grep -q "(node n2, " out &&
	test_exit_code 66 "$Q" flow "$L" --node nope 2>err &&
	grep -q "no CEL events for linkedid \"$L\" on node \"nope\"" err
'

test_done
