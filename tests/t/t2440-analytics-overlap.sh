#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='analytics on their own connection (etl.analytics_overlap, sql/0079): the same warehouse as in the batch transaction, and nothing lost when the loader dies between the two commits'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
[ -x "$ETL" ] || bail_out "no $ETL (run make)"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || skip_all "PostgreSQL server binaries are not installed"
capture_path s07_trunk_tenant >/dev/null || bail_out "captures not found"

PGDIR=$(mktemp -d /tmp/cdrflow-t2440.XXXXXX)
export CDRFLOW_PGPORT=$(free_port)
test_at_exit '"$TEST_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"'
eval "$("$TEST_ROOT/scripts/pg.sh" start "$PGDIR")" || bail_out "cannot start PostgreSQL"
q() { psql -X -Atc "$1"; }
reset_db() { psql -X -qc 'DROP SCHEMA public CASCADE; CREATE SCHEMA public' 2>/dev/null && "$ETL" migrate -q >/dev/null; }

# Every table of the warehouse but the loader's own bookkeeping, each in a
# file of its sorted rows, without the columns a clock or a sequence fills
# (with "ids": sequence-filled columns kept: both runs draw them in the
# same order unless a transaction rolled back).
dump() { # DIR [ids]
	rm -rf "$1" && mkdir "$1" &&
	for t in $(q "select table_name from information_schema.tables where table_schema = 'public'
		and table_type = 'BASE TABLE' and table_name not like 'etl\_%' and table_name <> 'schema_migrations'
		and table_name !~ '_(y[0-9]{4}m[0-9]{2}|default|p[0-9]+)$' order by 1"); do
		cols=$(q "select string_agg(quote_ident(column_name), ', ' order by ordinal_position)
			from information_schema.columns where table_schema = 'public' and table_name = '$t'
			and coalesce(column_default, '') !~ '(now|clock_timestamp|statement_timestamp)\(\)'
			and ('$2' = 'ids' or coalesce(column_default, '') !~ 'nextval')
			and column_name not in ('updated_at', 'created_at', 'first_seen', 'last_seen', 'raised_at', 'at')") &&
		test -n "$cols" &&
		q "select $cols from $t order by $cols" >"$1/$t" || return 1
	done &&
	test "$(ls "$1" | wc -l)" -ge 20
}

# The demo configuration (tenants, rating, fraud rules, limits) over the
# captures that exercise the most steps: queues, transfers, forks, trunks,
# tenants, QoS, PJSIP.
sed "s#tests/data/demo/#$TEST_ROOT/tests/data/demo/#" "$TEST_ROOT/tests/data/demo/cdrflow.yaml" >base.yaml
{ cat base.yaml; printf 'etl:\n  batch_events: 150\n'; } >overlap.yaml
{ cat base.yaml; printf 'etl:\n  batch_events: 150\n  analytics_overlap: no\n'; } >inline.yaml
NODES="s03b_sip_rtp_impaired s04_queue s05_transfer s06_fork s07_trunk_tenant a22_pjsip_mix"

test_expect_success 'setup: captures replayed into one spool' '
	mkdir sp &&
	for node in $NODES; do
		cdrflow_collector --replay "$(capture_path $node)" --spool sp --node "$node" >/dev/null || return 1
	done &&
	test "$(ls sp | wc -l)" -eq 6
'

test_expect_success 'batches of 150 events, analytics in each batch transaction: the reference' '
	reset_db &&
	"$ETL" --once -c inline.yaml --spool sp >out.inline 2>err.inline &&
	test "$(q "select count(*) from etl_analytics_pending")" -eq 0 &&
	dump ref ids && dump refn &&
	q "select node, last_seq from etl_checkpoint order by 1" >ckpt.ref &&
	batches=$(sed -n "s/.* batches=\([0-9]*\) .*/\1/p" out.inline) &&
	alerts=$(q "select count(*) from alert") && rolled=$(q "select count(*) from rollup_hourly") &&
	echo "batches $batches, alerts $alerts, hourly rollup rows $rolled" &&
	test "$batches" -ge 40 && test "$alerts" -ge 1 && test "$rolled" -ge 10
'

test_expect_success 'the same batches, analytics on the second connection: every table the same' '
	reset_db &&
	"$ETL" --once -c overlap.yaml --spool sp >out.overlap 2>err.overlap &&
	test "$(q "select count(*) from etl_analytics_pending")" -eq 0 &&
	dump got ids &&
	diff -r ref got &&
	! grep -i "error\|warn" err.overlap
'

# etl_checkpoint.legs_until (0081), kept batch by batch, is what 0019 read
# from the legs: the end of each node's latest leg.
test_expect_success 'each node'"'"'s legs_until is the end of its latest leg, batch after batch' '
	q "select node, legs_until from etl_checkpoint order by 1" >until.got &&
	q "select c.node, max(l.calldate + make_interval(secs => l.duration)) from etl_checkpoint c
		left join cdr l on l.node = c.node group by 1 order by 1" >until.exp &&
	test_cmp until.exp until.got &&
	test "$(grep -c "|2" until.got)" -eq 6 &&
	test "$(q "select cdrflow_loaded_until() = min(greatest(c.updated_at, (select max(l.calldate + make_interval(secs => l.duration))
		from cdr l where l.node = c.node))) from etl_checkpoint c")" = t
'

# A step that records the connection (application_name) it ran on.
seen_step() {
	q "create table seen_app (app text)" &&
	q "create function test_seen_step(text, bigint, bigint) returns void language sql as
		\$\$ insert into seen_app select current_setting('application_name') \$\$" &&
	q "insert into analytics_step (fn, ord) values ('test_seen_step', 999)"
}

test_expect_success 'the analytics ran on their own connection (application cdrflow-etl analytics)' '
	reset_db && seen_step &&
	"$ETL" --once -c overlap.yaml --spool sp >/dev/null 2>&1 &&
	q "select app, count(*) >= 40 from seen_app group by app" >apps &&
	echo "cdrflow-etl analytics|t" >expect &&
	test_cmp expect apps &&
	reset_db && seen_step &&
	"$ETL" --once -c inline.yaml --spool sp >/dev/null 2>&1 &&
	q "select app, count(*) >= 40 from seen_app group by app" >apps &&
	echo "cdrflow-etl|t" >expect &&
	test_cmp expect apps
'

# A trip wire among the analytics steps: it fails (or sleeps) when the
# batch reaches the seq in test_trip, until the row is removed.
trip_step() { # fail|sleep [NODE SEQ]
	q "create table test_trip (node text, seq bigint)" &&
	if [ "$1" = fail ]; then
		body="begin if exists (select 1 from test_trip where node = p_node and seq <= p_seq_hi) then
			raise exception 'tripped at %', p_seq_hi; end if; end"
	else
		body="begin if exists (select 1 from test_trip where node = p_node and seq <= p_seq_hi) then
			perform pg_sleep(60); end if; end"
	fi &&
	q "create function test_trip_step(p_node text, p_seq_lo bigint, p_seq_hi bigint) returns void
		language plpgsql as \$\$ $body \$\$" &&
	q "insert into analytics_step (fn, ord) values ('test_trip_step', 999)" &&
	q "insert into test_trip values ('${2:-s07_trunk_tenant}', ${3:-400})"
}
untrip() {
	q "delete from analytics_step where fn = 'test_trip_step'; drop table test_trip;
		drop function test_trip_step(text, bigint, bigint)"
}

test_expect_success 'the analytics of a batch fail: its rows stay committed with the batch pending, the next batch rolls back' '
	reset_db &&
	trip_step fail &&
	test_exit_code 65 "$ETL" --once -c overlap.yaml --spool sp >out.trip 2>err.trip &&
	grep "node s07_trunk_tenant: the analytics of events [0-9]*-[0-9]* failed: .*tripped at .*the batch.s rows are stored and its analytics pending" err.trip &&
	grep "1 node(s) stopped at failing analytics (first: s07_trunk_tenant)" err.trip &&
	! grep "corrupt\|skip" err.trip &&
	q "select count(*), min(seq_lo) < 400, max(seq_hi) >= 400 from etl_analytics_pending where node = '"'"'s07_trunk_tenant'"'"'" >pending &&
	echo "1|t|t" >expect && test_cmp expect pending &&
	# the pending batch is the last the checkpoint took in
	test "$(q "select last_seq from etl_checkpoint where node = '"'"'s07_trunk_tenant'"'"'")" = \
		"$(q "select seq_hi from etl_analytics_pending")" &&
	test "$(q "select count(*) from cel where node = '"'"'s07_trunk_tenant'"'"' and seq > (select seq_hi from etl_analytics_pending)")" -eq 0
'

test_expect_success 'the next run analyses the pending batch first, then loads on: the same warehouse' '
	untrip &&
	# a spool without the node (moved away): its pending batch is analysed
	mkdir -p sp-none &&
	"$ETL" --once -c overlap.yaml --spool sp-none >out.resume 2>err.resume &&
	grep "node s07_trunk_tenant: analysing the batch of events" err.resume &&
	grep "node s07_trunk_tenant: analysed 1 batch(es) an earlier run had loaded" err.resume &&
	test "$(q "select count(*) from etl_analytics_pending")" -eq 0 &&
	"$ETL" --once -c overlap.yaml --spool sp >out.resume2 2>err.resume2 &&
	dump got2 &&
	diff -r refn got2
'

# The analytics of one node fail: that node stops, the others load (as a
# node at corrupt data), in the transaction or beside it.
others_complete() {
	q "select node, last_seq from etl_checkpoint where node <> 'a22_pjsip_mix' order by 1" >ckpt.got &&
	grep -v "^a22_pjsip_mix|" ckpt.ref >ckpt.exp &&
	test_cmp ckpt.exp ckpt.got
}
test_expect_success 'failing analytics stop their own node only, run after run; the other nodes load' '
	reset_db &&
	trip_step fail a22_pjsip_mix 300 &&
	test_exit_code 65 "$ETL" --once -c overlap.yaml --spool sp >out.a22 2>err.a22 &&
	grep "1 node(s) stopped at failing analytics (first: a22_pjsip_mix)" err.a22 &&
	others_complete &&
	test "$(q "select node from etl_analytics_pending")" = a22_pjsip_mix &&
	test_exit_code 65 "$ETL" --once -c overlap.yaml --spool sp >out.a22b 2>err.a22b &&
	grep "node a22_pjsip_mix: the analytics of events .* failed: .*tripped at" err.a22b &&
	others_complete &&
	reset_db &&
	trip_step fail a22_pjsip_mix 300 &&
	test_exit_code 65 "$ETL" --once -c inline.yaml --spool sp >out.a22i 2>err.a22i &&
	grep "node a22_pjsip_mix: the analytics of events .* failed: .*tripped at .*the batch was rolled back: mend the failing step" err.a22i &&
	grep "1 node(s) stopped at failing analytics (first: a22_pjsip_mix)" err.a22i &&
	others_complete &&
	test "$(q "select count(*) from etl_analytics_pending")" -eq 0 &&
	test "$(q "select last_seq < 300 from etl_checkpoint where node = '"'"'a22_pjsip_mix'"'"'")" = t
'

# SIGKILL while the second connection runs a batch's analytics: its
# transaction never commits; the batch's rows and its pending row did.
test_expect_success 'the loader killed while a batch is analysed: the next run analyses it; nothing lost, nothing twice' '
	reset_db &&
	trip_step sleep &&
	{ "$ETL" --once -c overlap.yaml --spool sp >/dev/null 2>&1 & echo $! >etl.pid; } &&
	test_at_exit "kill -9 $(cat etl.pid) 2>/dev/null" &&
	for i in $(seq 600); do
		test "$(q "select count(*) from pg_stat_activity where application_name = '"'"'cdrflow-etl analytics'"'"'
			and wait_event = '"'"'PgSleep'"'"'")" -eq 1 && break
		sleep 0.1
	done &&
	test "$i" -lt 600 &&
	kill -9 "$(cat etl.pid)" &&
	q "select count(pg_terminate_backend(pid)) >= 0 from pg_stat_activity where application_name like '"'"'cdrflow-etl%'"'"'" &&
	for i in $(seq 100); do
		test "$(q "select count(*) from pg_stat_activity where application_name like '"'"'cdrflow-etl%'"'"'")" -eq 0 && break
		sleep 0.1
	done &&
	test "$(q "select count(*) from etl_analytics_pending")" -eq 1 &&
	untrip &&
	"$ETL" --once -c overlap.yaml --spool sp >out.kill 2>err.kill &&
	grep "analysed 1 batch(es) an earlier run had loaded" err.kill &&
	test "$(q "select count(*) from etl_analytics_pending")" -eq 0 &&
	dump got3 &&
	diff -r refn got3
'

checkpoints_complete() {
	q "select node, last_seq from etl_checkpoint order by 1" >ckpt.now && cmp -s ckpt.ref ckpt.now
}

# The events the "etl: events=" lines of FILE count, over all passes.
events_in() { sed -n 's/^etl: events=\([0-9]*\) .*/\1/p' "$1" | awk '{ s += $1 } END { print s + 0 }'; }

# A server that allows no second connection (max_connections, as a pooler
# or a role limit would): analysed in each batch's transaction, said once
# however many --follow passes.
test_expect_success 'no second connection: the batches are analysed in their own transaction, and it is said once' '
	reset_db &&
	q "alter system set max_connections = 2" && q "alter system set superuser_reserved_connections = 0" &&
	"$TEST_ROOT/scripts/pg.sh" restart "$PGDIR" >/dev/null &&
	{ cat overlap.yaml; printf "  poll_interval: 100ms\n"; } >follow.yaml &&
	# three nodes first, then the other three: batches in two passes at least
	rm -rf sp2 && mkdir sp2 && cp -r sp/a22_pjsip_mix sp/s03b_sip_rtp_impaired sp/s04_queue sp2/ &&
	{ "$ETL" --follow -c follow.yaml --spool sp2 >out.one 2>err.one & echo $! >etl.pid; } &&
	test_at_exit "kill $(cat etl.pid) 2>/dev/null" &&
	wait_for "grep -q \"^etl: events=\" out.one" 120 &&
	for node in s05_transfer s06_fork s07_trunk_tenant; do
		cp -r "sp/$node" "sp2/.$node" && mv "sp2/.$node" "sp2/$node" || return 1
	done &&
	# every event loaded (a node may arrive a pass after the others)
	wait_for "test \$(events_in out.one) -eq $(events_in out.inline)" 300 &&
	test "$(grep -c "^etl: events=" out.one)" -ge 2 &&
	kill "$(cat etl.pid)" && { wait "$(cat etl.pid)" || :; } &&
	# the server frees the loader'"'"'s two slots when its backends notice
	wait_for "q \"select 1\"" 30 &&
	test "$(grep -c "cannot open the analytics connection" err.one)" -eq 1 &&
	checkpoints_complete &&
	test "$(q "select count(*) from etl_analytics_pending")" -eq 0 &&
	dump got4 &&
	diff -r refn got4 &&
	psql -X -qc "alter system reset max_connections" -c "alter system reset superuser_reserved_connections" &&
	"$TEST_ROOT/scripts/pg.sh" restart "$PGDIR" >/dev/null
'

test_done
