#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='speed (issue 15): the plans of the big lookups, the indexes without readers gone, etl.ami_event_store'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
Q=$CDRFLOW_BUILD/cdrflow-query
[ -x "$ETL" ] && [ -x "$Q" ] || bail_out "build first (make)"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || skip_all "PostgreSQL server binaries are not installed"

PGDIR=$(mktemp -d /tmp/cdrflow-t5800.XXXXXX)
export CDRFLOW_PGPORT=$(free_port)
trap '"$TEST_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"' EXIT
eval "$("$TEST_ROOT/scripts/pg.sh" start "$PGDIR")" || bail_out "cannot start PostgreSQL"
"$ETL" migrate >/dev/null || bail_out "migrate failed"
q() { psql -X -Atc "$1"; }

test_expect_success 'ami_event keeps the indexes its readers use, not (event, eventtime) nor (linkedid)' '
	q "select indexname from pg_indexes where tablename = '"'"'ami_event'"'"' order by 1" >idx &&
	cat idx &&
	! grep -q "ami_event_event_time_idx" idx &&
	! grep -q "ami_event_linkedid_idx" idx &&
	grep -q "ami_event_uniqueid_idx" idx &&
	grep -q "ami_event_node_seq_idx" idx &&
	grep -q "call_src_idx" <<<"$(q "select indexname from pg_indexes where tablename = '"'"'call'"'"'")"
'

test_expect_success 'setup: 200 000 synthetic calls, 400 000 legs (tests/query/synth.sql)' '
	psql -q -v ON_ERROR_STOP=1 -v calls=200000 -f "$TEST_ROOT/tests/query/synth.sql" >/dev/null &&
	test "$(q "select count(*) from call where node = '"'"'synth'"'"'")" = 200000
'

test_expect_success 'flow LINKEDID: the call is found through the linkedids GIN index, not by walking call (start)' '
	"$Q" flow syn-190000 --node synth --explain | plan_nodes >flow.plan &&
	cat flow.plan &&
	grep -E "^Bitmap_Index_Scan - call_y2026m10_linkedids_idx" flow.plan &&
	! grep -E "call_y2026m(09|10)_start_idx" flow.plan &&
	! grep -E "^Seq_Scan call_y" flow.plan
'

test_expect_success 'flow LINKEDID: the lookup still finds the earliest call holding the linkedid' '
	q "update call set linkedids = linkedids || '"'"'{shared-x}'"'"' where call_id in ('"'"'syn-150000'"'"', '"'"'syn-190000'"'"')" &&
	q "insert into cel (eventtype, eventtime, channame, uniqueid, linkedid, node, seq, segno, seg_offset)
	   values ('"'"'CHAN_START'"'"', '"'"'2026-10-20 10:00:00+00'"'"', '"'"'SIP/a-1'"'"', '"'"'u1'"'"', '"'"'shared-x'"'"', '"'"'synth'"'"', 1, 0, 0)" &&
	"$Q" flow shared-x >flow.out &&
	head -1 flow.out &&
	head -1 flow.out | grep -q "^call syn-150000 (node synth, linkedids {syn-150000,shared-x})"
'

test_expect_success 'calls --src NUM (calls, not legs): the call (src, start) index, no Seq Scan' '
	"$Q" calls --src 1007 --from 2026-10-01 --to 2026-11-01 -n 0 --explain | plan_nodes >src.plan &&
	cat src.plan &&
	grep -E "^(Bitmap_)?Index_(Only_)?Scan .*call_y2026m10_src_start_idx" src.plan &&
	! grep -E "^Seq_Scan (cdr|call)_y" src.plan &&
	n=$("$Q" calls --src 1007 --from 2026-10-01 --to 2026-11-01 -n 0 -f csv --no-header | wc -l) &&
	test "$n" = "$(q "select count(*) from call where src = '"'"'1007'"'"' and start >= '"'"'2026-10-01'"'"' and start < '"'"'2026-11-01'"'"'")"
'

# etl.ami_event_store: analytics leaves the channel events out of ami_event;
# every table the analytics fill must come out the same.
S03=$(capture_path s03_sip_rtp) || bail_out "capture s03_sip_rtp not found"
S04=$(capture_path s04_queue) || bail_out "capture s04_queue not found"
printf 'cdr:\n  unanswered: yes\n  congestion: yes\n  endbeforehexten: no\n' >base.yaml
{ cat base.yaml; printf 'etl:\n  ami_event_store: all\n'; } >all.yaml
cp base.yaml analytics.yaml # the default
digest() { # every table but the raw event tables and the bookkeeping, one md5 per table
	for t in $(q "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
		      where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relispartition
		      and c.relname not in ('ami_event', 'schema_version', 'etl_checkpoint', 'etl_run', 'etl_lock')
		      order by 1"); do
		echo "$t $(q "select count(*) || ' ' || coalesce(md5(string_agg(x::text, '|' order by x::text)), '-')
			     from (select * from $t) x")"
	done
}
load_with() {
	psql -q -c "drop schema public cascade; create schema public" >/dev/null 2>&1 &&
	"$ETL" migrate >/dev/null &&
	"$ETL" --once -c "$1" --spool sp >/dev/null 2>&1
}

test_expect_success 'etl.ami_event_store: analytics stores only what the analytics read, and they agree' '
	cdrflow_collector --replay "$S03" --spool sp --node rtp >/dev/null &&
	cdrflow_collector --replay "$S04" --spool sp --node queue >/dev/null &&
	load_with all.yaml && digest >all.digest &&
	n_all=$(q "select count(*) from ami_event") &&
	load_with analytics.yaml && digest >analytics.digest &&
	n_an=$(q "select count(*) from ami_event") &&
	q "select distinct event from ami_event order by 1" >kept &&
	cat kept && echo "ami_event rows: all $n_all, analytics $n_an" &&
	test "$n_an" -gt 0 && test "$n_an" -lt "$n_all" &&
	! grep -qE "^(Newchannel|DialBegin|BridgeEnter|Cdr)$" kept &&
	grep -q "^RTCPSent$" kept && grep -q "^QueueCallerJoin$" kept &&
	test "$(q "select count(*) from qos_leg")" -gt 0 &&
	diff all.digest analytics.digest
'

# the month statement's rollup (0031): its sections from rollup_rating_hourly
# give exactly what they give from the legs (the base SQL runs when the
# rollup is renamed away)
REPORT=$CDRFLOW_BUILD/cdrflow-report
test_expect_success 'tenant-billing from rollup_rating_hourly = from the legs, byte for byte (demo captures, rated)' '
	psql -q -c "drop schema public cascade; create schema public" >/dev/null 2>&1 &&
	"$ETL" migrate >/dev/null &&
	for c in "$TEST_ROOT"/tests/data/*.ami.raw.xz; do
		n=$(basename "$c" .ami.raw.xz) &&
		cdrflow_collector --replay "$c" --spool demo --node "$n" >/dev/null || return 1
	done &&
	(cd "$TEST_ROOT" && "$ETL" --once -c tests/data/demo/cdrflow.yaml --spool "$TRASH/demo") >/dev/null 2>&1 &&
	test "$(q "select count(*) from cdr where carrier is not null and tenant is not null")" -gt 0 &&
	test "$(q "select sum(legs) from rollup_rating_hourly")" = \
	     "$(q "select count(*) from cdr where carrier is not null and tenant is not null")" &&
	from=$(q "select to_char(min(calldate), '"'"'YYYY-MM'"'"') from cdr") &&
	"$REPORT" -q --templates "$TEST_ROOT/templates" run tenant-billing --from "$from" -f csv -o rollup >/dev/null &&
	"$REPORT" -q --templates "$TEST_ROOT/templates" run tenant-billing --from "$from" -f csv -p tenant=tenantA \
		-o rollup-a >/dev/null &&
	day=$(q "select to_char(min(calldate), '"'"'YYYY-MM-DD HH24:MI'"'"') from cdr") &&
	"$REPORT" -q --templates "$TEST_ROOT/templates" run tenant-billing --from "$day" --to "$day:50" -f csv \
		-o part-rollup >/dev/null &&
	q "alter table rollup_rating_hourly rename to rollup_rating_hourly_off" &&
	"$REPORT" -q --templates "$TEST_ROOT/templates" run tenant-billing --from "$day" --to "$day:50" -f csv \
		-o part-base >/dev/null &&
	diff -r part-base part-rollup &&
	"$REPORT" -q --templates "$TEST_ROOT/templates" run tenant-billing --from "$from" -f csv -o base >/dev/null &&
	"$REPORT" -q --templates "$TEST_ROOT/templates" run tenant-billing --from "$from" -f csv -p tenant=tenantA \
		-o base-a >/dev/null &&
	q "alter table rollup_rating_hourly_off rename to rollup_rating_hourly" &&
	ls rollup && cat rollup/*by-destination* &&
	test "$(ls rollup | wc -l)" -ge 3 &&
	diff -r base rollup && diff -r base-a rollup-a &&
	# and the rollup is what was read: emptied, the sections come out empty
	q "create table rr_keep as select * from rollup_rating_hourly; truncate rollup_rating_hourly" &&
	"$REPORT" -q --templates "$TEST_ROOT/templates" run tenant-billing --from "$from" -f csv -o empty >/dev/null &&
	q "insert into rollup_rating_hourly select * from rr_keep; drop table rr_keep" &&
	! diff -r base empty >/dev/null &&
	for s in totals by-destination rate-status; do
		! diff empty/*-$s.csv base/*-$s.csv >/dev/null || { echo "section $s did not read the rollup"; return 1; }
	done
'

test_done
