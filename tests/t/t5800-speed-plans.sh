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
test_at_exit '"$TEST_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"'
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
	grep -E "^(Bitmap_)?Index_(Only_)?Scan .*call_y2026m10_src_start_" src.plan &&
	! grep -E "^Seq_Scan (cdr|call)_y" src.plan &&
	n=$("$Q" calls --src 1007 --from 2026-10-01 --to 2026-11-01 -n 0 -f csv --no-header | wc -l) &&
	test "$n" = "$(q "select count(*) from call where src = '"'"'1007'"'"' and start >= '"'"'2026-10-01'"'"' and start < '"'"'2026-11-01'"'"'")"
'

# 0075: the (src, start, call_id) index holds every column the listing
# prints: once vacuum has marked the pages all-visible (autovacuum does
# after a load) the calls come from the index alone, and source_node is
# read once (a CTE), not rescanned for every call; the rows are those of
# the table, in its order (start, call_id)
test_expect_success 'calls --src NUM: an index-only scan (0075), source_node read once, the rows of the table' '
	q "vacuum (analyze) call" >/dev/null &&
	q "insert into source_node (node, type) values ('"'"'synth'"'"', '"'"'kamailio'"'"')" >/dev/null &&
	"$Q" calls --src 1007 --from 2026-10-01 --to 2026-11-01 -n 0 --explain | plan_nodes >ios.plan &&
	cat ios.plan &&
	grep -E "^Index_Only_Scan call_y2026m10 call_y2026m10_src_start_call_id_" ios.plan &&
	! grep -E "^(Bitmap_Heap_|Parallel_)?(Seq_)?Scan call_y" ios.plan &&
	test "$(grep -c "^Seq_Scan source_node" ios.plan)" = 1 &&
	grep -E "^CTE_Scan " ios.plan &&
	q "select indexdef from pg_indexes where indexname = '"'"'call_src_idx'"'"'" | grep -F "(src, start, call_id) INCLUDE" &&
	"$Q" calls --src 1007 --from 2026-10-01 --to 2026-11-01 -n 0 -f csv --no-header | tr -d "\r" >ios.csv &&
	PGTZ=UTC q "select c.call_id, to_char(c.start, '"'"'YYYY-MM-DD HH24:MI:SS'"'"'), c.src, c.dst, c.direction, c.tenant, c.legs,
	   c.total_billsec, c.outcome, round(c.worst_mos::numeric, 2), c.node, coalesce(s.type, '"'"'asterisk'"'"')
	   from call c left join source_node s on s.node = c.node
	   where c.src = '"'"'1007'"'"' and c.start >= '"'"'2026-10-01'"'"' and c.start < '"'"'2026-11-02'"'"'
	   order by c.start, c.call_id" | tr "|" "," >ios.want &&
	test_line_count ios.csv -ge 50 &&
	test_cmp ios.want ios.csv &&
	# --limit: the first rows of the same order
	"$Q" calls --src 1007 --from 2026-10-01 --to 2026-11-01 -n 25 -f csv --no-header 2>/dev/null | tr -d "\r" >ios25.csv &&
	head -n 25 ios.csv | test_cmp - ios25.csv &&
	grep -q ",synth,kamailio$" ios25.csv &&
	q "delete from source_node where node = '"'"'synth'"'"'" >/dev/null
'

# calls with a leg filter print the first --limit calls in start order: when
# matches are common the calls are walked in that order (call (start)) and
# each one's legs looked up (cdr (call_id)), not every leg of the month
# filtered first (a Seq Scan of the month's legs, and for --trunk a regexp
# on each); the rows are those of the legs-first plan (--limit 0, its head)
test_expect_success 'calls --dst / --trunk / --dst-raw, a page: the calls walked in order, their legs by call_id' '
	for f in "--dst 44" "--trunk SIP/trunk3" "--dst-raw 0044"; do
		"$Q" calls --from 2026-10 $f --explain | plan_nodes >walk.plan &&
		cat walk.plan &&
		grep -E "^(Parallel_)?Index_(Only_)?Scan call_y2026m10 call_y2026m10_start_idx" walk.plan &&
		grep -E "^(Bitmap_)?Index_(Only_)?Scan .*cdr_y2026m10_call_id_idx" walk.plan &&
		! grep -E "^(Parallel_)?Seq_Scan (cdr|call)_y" walk.plan &&
		"$Q" calls --from 2026-10 $f -f csv >walk.csv &&
		"$Q" calls --from 2026-10 $f -f csv -n 0 | head -n 1001 >all.csv &&
		test_line_count walk.csv = 1001 &&
		test_cmp all.csv walk.csv || return 1
	done &&
	# rare: the legs first (the dst_e164 index; none match: no walk over the month)
	"$Q" calls --from 2026-10 --dst 4420 --explain | plan_nodes >rare.plan &&
	grep -E "cdr_y2026m10_dst_e164_calldate_idx" rare.plan &&
	! grep -E "call_y2026m10_start_idx" rare.plan
'

test_expect_success 'stats on whole hours: the sums from rollup_hourly and rollup_call_hourly, not from call or cdr' '
	"$Q" stats --by day --from 2026-10-01 --to 2026-11-01 --explain | plan_nodes >stats.plan &&
	cat stats.plan &&
	grep -E "rollup_call_hourly" stats.plan &&
	grep -E " rollup_hourly" stats.plan &&
	! grep -E " (cdr|call)_y" stats.plan
'

test_expect_success 'stats in a half-hour zone (Asia/Kolkata, the month): the hourly rollups, the cut hours from the quarter-hour ones (0074), no leg' '
	q "analyze rollup_hourly; analyze rollup_call_hourly; analyze rollup_quarter_hour; analyze rollup_call_quarter_hour" >/dev/null &&
	for by in day hour; do
		"$Q" stats --by $by --from 2026-10 --tz Asia/Kolkata --explain | plan_nodes >kstats.plan &&
		cat kstats.plan &&
		grep -E " rollup_quarter_hour" kstats.plan &&
		grep -E " rollup_call_quarter_hour" kstats.plan &&
		! grep -E " (cdr|call)_(y|default)" kstats.plan || return 1
	done &&
	"$Q" stats --by day --from 2026-10 --tz Asia/Kolkata --explain | plan_nodes | grep -E " rollup_hourly" &&
	# off the quarter-hour grid at either end: those minutes from the legs, by index range
	"$Q" stats --by day --from "2026-10-01 00:10" --to "2026-10-31 23:50" --tz Asia/Kolkata --explain |
		plan_nodes >kodd.plan &&
	cat kodd.plan &&
	grep -E " rollup_quarter_hour" kodd.plan &&
	grep -E "^(Bitmap_|Parallel_)?Index_(Only_)?Scan .*cdr_y2026m10_calldate_uniqueid_idx" kodd.plan &&
	! grep -E "^(Parallel_)?Seq_Scan cdr_y" kodd.plan
'

test_expect_success 'one tenant of the dictionary views (coalesce(tenant, '"''"')): the tenant key indexes (0050)' '
	q "analyze cdr; analyze call" >/dev/null &&
	PGOPTIONS="-c jit=off" q "explain (format json) select count(v.sell_cost) from rollup_leg_v v
	   where v.calldate >= '"'"'2026-10-01'"'"' and v.calldate < '"'"'2026-11-01'"'"' and v.tenant = '"'"'tenant3'"'"'" |
		plan_nodes >tenant.plan &&
	cat tenant.plan &&
	grep -E "^(Bitmap_|Parallel_)?Index_(Only_)?Scan .*cdr_y2026m10_coalesce_calldate_idx" tenant.plan &&
	! grep -E "^(Parallel_)?Seq_Scan cdr_y" tenant.plan &&
	PGOPTIONS="-c jit=off" q "explain (format json) select count(*) from metric_call_v k
	   where k.start >= '"'"'2026-10-01'"'"' and k.start < '"'"'2026-11-01'"'"' and k.tenant = '"'"'tenant3'"'"'" |
		plan_nodes >tcall.plan &&
	cat tcall.plan &&
	grep -E "call_y2026m10_coalesce_start_idx" tcall.plan &&
	! grep -E "^(Parallel_)?Seq_Scan call_y" tcall.plan
'

# the cdr-export section's own SQL, its parameters as literals: October, no tenant
export_sql() {
	"$PYTHON" -c '
import sys, yaml
sql = yaml.safe_load(open(sys.argv[1]))["sections"][0]["sql"]
for k, v in ((":from", "timestamptz \x272026-10-01 00:00+00\x27"), (":to", "timestamptz \x272026-11-01 00:00+00\x27"),
             (":tenant", "NULL::text")):
    assert k in sql, k
    sql = sql.replace(k, v)
print(sql)' "$TEST_ROOT/templates/cdr-export.yaml"
}

test_expect_success 'cdr-export: October read in its own order from the (calldate, uniqueid) index (0058), no sort' '
	sql=$(export_sql) &&
	PGOPTIONS="-c jit=off" q "explain (format json) $sql" | plan_nodes >export.plan &&
	cat export.plan &&
	grep -E "^Index_Scan .*cdr_y2026m10_calldate_uniqueid_idx" export.plan &&
	! grep -E "^(Incremental_)?Sort " export.plan &&
	! grep -q "calldate_dst" <<<"$(q "select indexname from pg_indexes where tablename like '"'"'cdr%'"'"'")" &&
	test "$(q "$sql" | wc -l)" = "$(q "select count(*) from cdr where calldate >= '"'"'2026-10-01'"'"' and calldate < '"'"'2026-11-01'"'"'")"
'

# fraud-digest reads every leg of its day in four sections: by the legs'
# quarter hour (0076), not by a parallel scan of the month that 0058's
# two-column index lost to in the planner's costs.
test_expect_success 'fraud-digest, a day: every leg section reads the day from cdr_quarter_idx (0076), no scan of the month' '
	n0=$(wc -l <"$PGDIR/server.log") &&
	PGOPTIONS="-c session_preload_libraries=auto_explain -c auto_explain.log_min_duration=0 -c auto_explain.log_level=warning" \
		"$CDRFLOW_BUILD/cdrflow-report" -q --templates "$TEST_ROOT/templates" run fraud-digest --from 2026-10-15 \
		-p min_attempts=1 -f csv -o fd >/dev/null &&
	tail -n +$((n0 + 1)) "$PGDIR/server.log" >fd.plans &&
	grep -E "Scan.* on cdr_" fd.plans &&
	test "$(grep -cE "Index Scan (using|on) cdr_y2026m10_date_bin_idx" fd.plans)" -ge 4 &&
	! grep -E "Seq Scan on cdr_" fd.plans &&
	test "$(wc -l <fd/fraud-digest-2026-10-15-2026-10-15-short-call-floods.csv)" -gt 1
'

# An expression index a migration adds to a month already loaded (0076's,
# on every month) has no statistics until that month is analysed again,
# which a closed month never is; cdrflow_analyze_unplanned() (0082) does it.
test_expect_success 'a month whose quarter-hour index lost its statistics is analysed by 0082'"'"'s function, once' '
	q "delete from pg_statistic where starelid = '"'"'cdr_y2026m10_date_bin_idx'"'"'::regclass" &&
	test "$(q "select count(*) from pg_statistic where starelid = '"'"'cdr_y2026m10_date_bin_idx'"'"'::regclass")" -eq 0 &&
	q "select cdrflow_analyze_unplanned()" >analysed &&
	grep -q "cdr_y2026m10" analysed &&
	test "$(q "select count(*) from pg_statistic where starelid = '"'"'cdr_y2026m10_date_bin_idx'"'"'::regclass")" -gt 0 &&
	test "$(q "select cdrflow_analyze_unplanned()")" = "{}"
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
# The reports' rollup branches against their legs-only branches, byte for
# byte, over periods that use each part of a period (0047): whole UTC days
# (a month), whole hours at the ends (--tz America/New_York's month; a
# period starting 20 minutes into an hour, which also has legs at its
# start), and legs only (50 minutes).  run_reports DIR writes every CSV.
# tenant-statement (0055) needs a tenant: tenantA's unless one is given.
# Asia/Kolkata (+05:30): a local midnight cuts an hour of every day.
run_one() {
	local st=(-p tenant=tenantA)
	case " $* " in *" tenant="*) st=() ;; esac
	dir=$1 && shift &&
	"$REPORT" -q --templates "$TEST_ROOT/templates" run tenant-billing "$@" -f csv -o "$dir" >/dev/null &&
	"$REPORT" -q --templates "$TEST_ROOT/templates" run daily-traffic "$@" -f csv -o "$dir" >/dev/null &&
	"$REPORT" -q --templates "$TEST_ROOT/templates" run operator-margin "$@" -f csv -o "$dir" >/dev/null &&
	"$REPORT" -q --templates "$TEST_ROOT/templates" run tenant-statement "${st[@]}" "$@" -f csv -o "$dir" >/dev/null
}
run_reports() {
	run_one "$1/month" --from "$from" &&
	run_one "$1/tenant" --from "$from" -p tenant=tenantA &&
	run_one "$1/ny" --from "$from" --tz America/New_York &&
	run_one "$1/kolkata" --from "$from" --tz Asia/Kolkata &&
	run_one "$1/kedges" --from "$hour:20" --to "$next" --tz Asia/Kolkata &&
	run_one "$1/cut" --from "$from" --tz "$cuttz" &&
	run_one "$1/cut2" --from "$from" --tz "$cuttz2" &&
	run_one "$1/cutq" --from "$from" --tz "$cutqtz" &&
	run_one "$1/edges" --from "$hour:20" --to "$next" &&
	run_one "$1/part" --from "$day" --to "$day:50"
}
# legs in hour $1 (YYYY-MM-DD HH) from minute 20 on: the legs-only start of "--from $1:20"
legs_late_in_hour() {
	q "select count(*) from cdr where calldate >= '$1:20' and calldate < '$1:00'::timestamptz + interval '1 hour'"
}
# the relations whose presence makes a section read the rollups
ROLLUP_GATES="rollup_rating_daily rollup_call_hourly rollup_hourly rollup_margin_daily rollup_statement_hourly"
gates() { for t in $ROLLUP_GATES; do q "alter table $2$t rename to $3$t" || return 1; done; }

test_expect_success 'tenant-billing, daily-traffic, operator-margin and tenant-statement from the rollups = from the legs, byte for byte, any period' '
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
	test "$(q "select sum(legs) from rollup_rating_daily")" = "$(q "select sum(legs) from rollup_rating_hourly")" &&
	from=$(q "select to_char(min(calldate), '"'"'YYYY-MM'"'"') from cdr") &&
	day=$(q "select to_char(min(calldate), '"'"'YYYY-MM-DD HH24:MI'"'"') from cdr") &&
	hour=$(q "select to_char(min(calldate), '"'"'YYYY-MM-DD HH24'"'"') from cdr") &&
	next=$(q "select to_char(min(calldate) + interval '"'"'3 days'"'"', '"'"'YYYY-MM-DD'"'"') from cdr") &&
	test "$(legs_late_in_hour "$hour")" -gt 0 &&
	# a zone whose local midnight falls in the hour of a charged leg of
	# tenantA, before it (POSIX "CUT-hh:mm" is UTC+hh:mm): that hour is
	# read from the legs
	cut=$(q "select to_char(calldate, '"'"'HH24 MI'"'"') from cdr where tenant = '"'"'tenantA'"'"'
		 and sell_cost is not null and extract(minute from calldate) >= 2 order by calldate limit 1") &&
	off=$(( (1440 - (10#${cut% *} * 60 + 10#${cut#* } / 2)) % 1440 )) &&
	if [ $off -gt 840 ]; then off=$((off - 1440)); fi &&
	if [ $off -ge 0 ]; then cuttz=$(printf "CUT-%02d:%02d" $((off / 60)) $((off % 60)));
	else cuttz=$(printf "CUT+%02d:%02d" $((-off / 60)) $((-off % 60))); fi &&
	test "$(PGTZ=$cuttz q "select count(*) from cdr where tenant = '"'"'tenantA'"'"' and sell_cost is not null
		and date_trunc('"'"'day'"'"', date_trunc('"'"'hour'"'"', calldate, '"'"'UTC'"'"')) <> date_trunc('"'"'day'"'"', calldate)")" -gt 0 &&
	# and one whose local midnight falls in that hour after the leg, past its
	# half hour (0073 then reads the legs of the later part; the part of the
	# leg is the hour of the rollup less them)
	off2=$(( (1440 - (10#${cut% *} * 60 + 30 + 10#${cut#* } / 2)) % 1440 )) &&
	if [ $off2 -gt 840 ]; then off2=$((off2 - 1440)); fi &&
	if [ $off2 -ge 0 ]; then cuttz2=$(printf "CUT-%02d:%02d" $((off2 / 60)) $((off2 % 60)));
	else cuttz2=$(printf "CUT+%02d:%02d" $((-off2 / 60)) $((-off2 % 60))); fi &&
	test "$(PGTZ=$cuttz2 q "select count(*) from cdr where tenant = '"'"'tenantA'"'"' and sell_cost is not null
		and date_trunc('"'"'day'"'"', date_trunc('"'"'hour'"'"', calldate, '"'"'UTC'"'"') + interval '"'"'1 hour'"'"' - interval '"'"'1 microsecond'"'"')
		    <> date_trunc('"'"'day'"'"', calldate)")" -gt 0 &&
	# and one whose local midnight falls in that hour on the quarter-hour
	# grid, after the quarter hour of the leg (or at its start in the last
	# one): the hour is read from the quarter-hour rollup (0077)
	qm=$(( 10#${cut#* } / 15 )) &&
	mq=$(( qm == 3 ? 45 : (qm + 1) * 15 )) &&
	offq=$(( (1440 - (10#${cut% *} * 60 + mq)) % 1440 )) &&
	if [ $offq -gt 840 ]; then offq=$((offq - 1440)); fi &&
	if [ $offq -ge 0 ]; then cutqtz=$(printf "CUT-%02d:%02d" $((offq / 60)) $((offq % 60)));
	else cutqtz=$(printf "CUT+%02d:%02d" $((-offq / 60)) $((-offq % 60))); fi &&
	test "$(PGTZ=$cutqtz q "select count(*) from cdr where tenant = '"'"'tenantA'"'"' and sell_cost is not null
		and date_trunc('"'"'day'"'"', date_trunc('"'"'hour'"'"', calldate, '"'"'UTC'"'"')) <> date_trunc('"'"'day'"'"', date_trunc('"'"'hour'"'"', calldate, '"'"'UTC'"'"') + interval '"'"'1 hour'"'"' - interval '"'"'1 microsecond'"'"')")" -gt 0 &&
	run_reports rollup &&
	gates "" "" off_ &&
	run_reports base &&
	gates "" off_ "" &&
	test "$(find rollup -name "*.csv" | wc -l)" -ge 130 &&
	diff -r base rollup &&
	# and the rollups are what was read: emptied, the sections change
	for t in rollup_rating_daily rollup_rating_hourly rollup_daily rollup_hourly rollup_call_hourly \
		 rollup_margin_daily rollup_margin_hourly rollup_statement_hourly; do
		q "create table keep_$t as select * from $t; truncate $t" || return 1
	done &&
	run_reports empty &&
	for t in rollup_rating_daily rollup_rating_hourly rollup_daily rollup_hourly rollup_call_hourly \
		 rollup_margin_daily rollup_margin_hourly rollup_statement_hourly; do
		q "insert into $t select * from keep_$t; drop table keep_$t" || return 1
	done &&
	m=month &&
	for s in tenant-billing-*-totals tenant-billing-*-by-tenant tenant-billing-*-by-destination \
		 tenant-billing-*-rate-status daily-traffic-*-totals daily-traffic-*-by-tenant daily-traffic-*-per-hour \
		 operator-margin-*-totals operator-margin-*-by-tenant operator-margin-*-by-carrier \
		 operator-margin-*-by-destination tenant-statement-*-totals tenant-statement-*-per-day \
		 tenant-statement-*-by-destination tenant-statement-*-by-source tenant-statement-*-by-day; do
		! diff empty/$m/$s.csv base/$m/$s.csv >/dev/null || { echo "section $s did not read the rollup"; return 1; }
	done &&
	# the New York month has whole days, hours at both ends and the rating
	# and leg rollups answer it too
	ny=ny &&
	! diff empty/$ny/tenant-billing-*-by-destination.csv base/$ny/tenant-billing-*-by-destination.csv >/dev/null &&
	# the statement in the quarter-grid zone reads its cut hours from the
	# quarter-hour rollup (0077): emptied, the days change
	q "create table keep_sq as select * from rollup_statement_quarter_hour; truncate rollup_statement_quarter_hour" &&
	run_one emptyq --from "$from" --tz "$cutqtz" &&
	q "insert into rollup_statement_quarter_hour select * from keep_sq; drop table keep_sq" &&
	! diff emptyq/tenant-statement-*-per-day.csv base/cutq/tenant-statement-*-per-day.csv >/dev/null &&
	run_one refilledq --from "$from" --tz "$cutqtz" &&
	diff -r refilledq base/cutq &&
	cat rollup/$m/tenant-billing-*-by-tenant.csv rollup/$m/daily-traffic-*-by-tenant.csv
'

# The plans the server made for a report's run (auto_explain at WARNING:
# pg.sh logs nothing below it).  plans_of FILE REPORT-ARGS...
plans_of() {
	local out=$1 n0 && shift &&
	n0=$(wc -l <"$PGDIR/server.log") &&
	PGOPTIONS="-c session_preload_libraries=auto_explain -c auto_explain.log_min_duration=0 -c auto_explain.log_level=warning" \
		"$REPORT" -q --templates "$TEST_ROOT/templates" run "$@" -f csv -o plans >/dev/null &&
	tail -n +$((n0 + 1)) "$PGDIR/server.log" >"$out"
}
test_expect_success 'daily-traffic, whole hours: the legs branches are planned away, not gated at run time' '
	plans_of dt-utc.plans daily-traffic --from "$from" &&
	test "$(grep -c "Query Text" dt-utc.plans)" -ge 3 &&
	grep -q "on rollup_hourly" dt-utc.plans &&
	grep -q "on rollup_call_hourly" dt-utc.plans &&
	! grep -E "on (cdr|call)_(y|default)|Gather" dt-utc.plans &&
	! grep -q "on rollup_quarter_hour" dt-utc.plans &&
	# a zone whose midnights cut hours on the quarter hour: the quarter-hour
	# rollups (0074), no leg and no hourly branch
	plans_of dt-kolkata.plans daily-traffic --from "$from" --tz Asia/Kolkata &&
	grep -q "on rollup_quarter_hour" dt-kolkata.plans &&
	grep -q "on rollup_call_quarter_hour" dt-kolkata.plans &&
	! grep -E "on (cdr|call)_(y|default)|Gather" dt-kolkata.plans &&
	! grep -q "on rollup_hourly" dt-kolkata.plans &&
	# one whose midnight is off the quarter-hour grid: the legs alone
	plans_of dt-cut.plans daily-traffic --from "$from" --tz "$cuttz" &&
	grep -qE "on cdr_(y|default)" dt-cut.plans &&
	! grep -qE "on rollup_(quarter_hour|hourly)" dt-cut.plans
'

# The quarter-hour range fraud-digest adds (0076) is implied by its exact
# period: without it (the template less those lines), the same bytes.
test_expect_success 'fraud-digest: the quarter-hour range (0076) changes no row, any period and zone' '
	mkdir -p noq &&
	sed "/date_bin(.15 minutes., l.calldate/d" "$TEST_ROOT/templates/fraud-digest.yaml" >noq/fraud-digest.yaml &&
	test "$(grep -c "date_bin(.15 minutes., l.calldate" "$TEST_ROOT/templates/fraud-digest.yaml")" = 8 &&
	test "$(diff "$TEST_ROOT/templates/fraud-digest.yaml" noq/fraud-digest.yaml | grep -c "^<")" = 8 &&
	fd() { # DIR TEMPLATES ARGS...
		local d=$1 t=$2 && shift 2 &&
		"$REPORT" -q --templates "$t" run fraud-digest -p min_attempts=1 "$@" -f csv -o "$d" >/dev/null
	} &&
	for tpl in "$TEST_ROOT/templates" noq; do
		o=fdq-$(basename "$tpl") &&
		fd $o/month "$tpl" --from "$from" &&
		fd $o/kolkata "$tpl" --from "$from" --tz Asia/Kolkata &&
		fd $o/kedges "$tpl" --from "$hour:20" --to "$next" --tz Asia/Kolkata &&
		fd $o/cut "$tpl" --from "$from" --tz "$cuttz" &&
		fd $o/part "$tpl" --from "$day" --to "$day:50" &&
		fd $o/tenant "$tpl" --from "$from" -p tenant=tenantA || return 1
	done &&
	diff -r fdq-templates fdq-noq &&
	test "$(cat fdq-noq/month/*-out-of-hours.csv fdq-noq/month/*-short-call-floods.csv | wc -l)" -gt 4 &&
	test "$(cat fdq-noq/part/*-short-call-floods.csv | wc -l)" -gt 1
'

# cdrflow-query stats (0059): the rollups' whole hours less those a local
# hour or day cuts, the legs for the rest, = the legs alone (--source
# base), byte for byte, for every --by in zones whose boundaries are whole
# UTC hours or not (India +05:30, Eucla +08:45, the cut zone above)
stats_all() {
	for by in hour day tenant trunk destination; do
		"$Q" stats --by $by "$@" -f csv || return 1
		"$Q" stats --by $by "$@" -f csv --tenant tenantA || return 1
	done
}
stats_periods() {
	local n=$1 && shift &&
	stats_all --from "$from" "$@" >$n-month.csv &&
	stats_all --from "$from" --tz America/New_York "$@" >$n-ny.csv &&
	stats_all --from "$from" --tz Asia/Kolkata "$@" >$n-kolkata.csv &&
	stats_all --from "$from" --tz Australia/Eucla "$@" >$n-eucla.csv &&
	stats_all --from "$hour:20" --to "$next" --tz Asia/Kolkata "$@" >$n-kedges.csv &&
	stats_all --from "$from" --tz "$cuttz" "$@" >$n-cut.csv &&
	stats_all --from "$day" --to "$day:50" "$@" >$n-part.csv
}
test_expect_success 'query stats from the rollups and the cut hours'"'"' legs = from the legs alone, any --by, period and zone' '
	mkdir -p qs && (cd qs && stats_periods auto && stats_periods base --source base) &&
	for f in month ny kolkata eucla kedges cut part; do
		test_cmp qs/base-$f.csv qs/auto-$f.csv || return 1
	done &&
	test "$(grep -c . qs/auto-kolkata.csv)" -gt 20 &&
	"$Q" stats --by day --from "$from" --tz Asia/Kolkata >qs/k.table &&
	head -1 qs/k.table | grep -q "^source: rollup_hourly_v, rollup_call_hourly + rollup_quarter_hour, rollup_call_quarter_hour (quarter hours)  " &&
	# the rollups are read: with one emptied the figures change (the
	# hourly ones: the Kolkata days; the quarter-hour ones (0074): from the
	# quarter past the first leg'"'"'s hour, whose late legs they hold)
	for t in rollup_hourly rollup_quarter_hour rollup_call_quarter_hour; do
		q "create table keep_rh as select * from $t; truncate $t" &&
		"$Q" stats --by day --from "$from" --tz Asia/Kolkata -f csv >qs/k-empty.csv &&
		"$Q" stats --by tenant --from "$hour:15" --to "$next" -f csv >qs/q-empty.csv &&
		q "insert into $t select * from keep_rh; drop table keep_rh" &&
		"$Q" stats --by day --from "$from" --tz Asia/Kolkata -f csv >qs/k-again.csv &&
		"$Q" stats --by tenant --from "$hour:15" --to "$next" -f csv >qs/q-again.csv &&
		{ ! test_cmp qs/k-again.csv qs/k-empty.csv >/dev/null 2>&1 ||
		  ! test_cmp qs/q-again.csv qs/q-empty.csv >/dev/null 2>&1; } || return 1
	done &&
	"$Q" stats --by tenant --from "$hour:15" --to "$next" --source base -f csv >qs/q-base.csv &&
	test_cmp qs/q-base.csv qs/q-again.csv &&
	"$Q" stats --by day --from "$from" --tz Asia/Kolkata --source base -f csv >qs/k-base.csv &&
	test_cmp qs/k-base.csv qs/k-again.csv
'

test_expect_success 'cdrflow_period_cut: the hours a local day or hour cuts (0059)' '
	test "$(PGTZ=UTC q "select cdrflow_period_cut('"'2026-10-01 00:00'"', '"'2026-10-03 00:00'"', '"'day'"')")" = "{}" &&
	test "$(PGTZ=America/New_York q "select cdrflow_period_cut('"'2026-10-01 00:00'"', '"'2026-10-03 00:00'"', '"'hour'"')")" = "{}" &&
	test "$(PGTZ=Asia/Kolkata q "select cdrflow_period_cut(s.h0, s.h1, '"'day'"') from cdrflow_period_split('"'2026-10-01 00:00'"', '"'2026-10-03 00:00'"') s")" = \
	     "{\"2026-10-01 23:30:00+05:30\"}" &&
	test "$(PGTZ=Asia/Kolkata q "select cardinality(cdrflow_period_cut('"'2026-10-01 00:30'"', '"'2026-10-02 00:30'"', '"'hour'"'))")" = 24 &&
	test "$(PGTZ=Australia/Eucla q "select cdrflow_period_cut(s.h0, s.h1, '"'day'"') from cdrflow_period_split('"'2026-10-01 00:00'"', '"'2026-10-03 00:00'"') s")" = \
	     "{\"2026-10-01 23:45:00+08:45\"}" &&
	test "$(PGTZ=Asia/Kolkata q "select cdrflow_period_cut('"'2026-10-01 00:30'"', '"'2026-10-02 00:30'"', NULL)")" = "{}"
'

test_expect_success 'cdrflow_period_split: days, hours at either end, legs for the rest, in any time zone' '
	test "$(PGTZ=America/New_York q "select row(s.*)::text from cdrflow_period_split('"'2026-10-01 00:00'"', '"'2026-11-01 00:00'"') s")" = \
	     "(\"2026-10-01 00:00:00-04\",\"2026-10-01 20:00:00-04\",\"2026-10-31 20:00:00-04\",\"2026-11-01 00:00:00-04\")" &&
	test "$(PGTZ=UTC q "select row(s.*)::text from cdrflow_period_split('"'2026-10-01 10:20'"', '"'2026-10-03 05:10'"') s")" = \
	     "(\"2026-10-01 11:00:00+00\",\"2026-10-02 00:00:00+00\",\"2026-10-03 00:00:00+00\",\"2026-10-03 05:00:00+00\")" &&
	test "$(PGTZ=UTC q "select row(s.*)::text from cdrflow_period_split('"'2026-10-01 10:20'"', '"'2026-10-01 15:10'"') s")" = \
	     "(\"2026-10-01 11:00:00+00\",\"2026-10-01 15:00:00+00\",\"2026-10-01 15:00:00+00\",\"2026-10-01 15:00:00+00\")" &&
	test "$(PGTZ=UTC q "select row(s.*)::text from cdrflow_period_split('"'2026-10-01 10:20'"', '"'2026-10-01 10:50'"') s")" = \
	     "(\"2026-10-01 10:50:00+00\",\"2026-10-01 10:50:00+00\",\"2026-10-01 10:50:00+00\",\"2026-10-01 10:50:00+00\")" &&
	test "$(PGTZ=Asia/Kolkata q "select row(s.*)::text from cdrflow_period_split('"'2026-10-01 00:00'"', '"'2026-10-03 00:00'"') s")" = \
	     "(\"2026-10-01 00:30:00+05:30\",\"2026-10-01 05:30:00+05:30\",\"2026-10-02 05:30:00+05:30\",\"2026-10-02 23:30:00+05:30\")"
'

test_expect_success 'whole days and hours read the rollups only: with the legs and calls gone, the same month' '
	q "create table keep_cdr as select * from cdr; create table keep_call as select * from call" &&
	q "truncate cdr, call" &&
	run_one gone/month --from "$from" &&
	run_one gone/tenant --from "$from" -p tenant=tenantA &&
	run_one gone/ny --from "$from" --tz America/New_York &&
	# back as they were (the legs are registered already: no trigger)
	q "set session_replication_role = replica; insert into cdr select * from keep_cdr;
	   insert into call select * from keep_call; drop table keep_cdr, keep_call" >/dev/null &&
	test "$(q "select count(*) from cdr")" -gt 0 &&
	for d in month tenant ny; do
		diff -r -x "*caveats*" rollup/$d gone/$d || return 1
	done
'

test_done
