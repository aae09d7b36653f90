#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='Citus (coordinator + 2 workers, migrate --distribute) gives the same rows, reports and query output as one PostgreSQL for the same spool; RLS, retention, kill -9 and a worker restart mid-load'
. "$(dirname "$0")/../lib/test-lib.sh"

require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
REPORT=$CDRFLOW_BUILD/cdrflow-report
QUERY=$CDRFLOW_BUILD/cdrflow-query
for b in "$ETL" "$REPORT" "$QUERY"; do [ -x "$b" ] || bail_out "no $b (run make)"; done
ls /usr/lib/postgresql/15/bin/postgres >/dev/null 2>&1 || bail_out "PostgreSQL 15 is not installed (scripts/install-deps.sh)"
[ -f "$CDRFLOW_SHARED/vendor/citus-13.2.2.tar.gz" ] || bail_out "no $CDRFLOW_SHARED/vendor/citus-13.2.2.tar.gz"
export CDRFLOW_CITUS_TARBALL=$CDRFLOW_SHARED/vendor/citus-13.2.2.tar.gz
capture_path s01_answered >/dev/null || bail_out "captures not found"

CDIR=$(mktemp -d /tmp/cdrflow-t2610-citus.XXXXXX)
PDIR=$(mktemp -d /tmp/cdrflow-t2610-pg.XXXXXX)
chmod 755 "$CDIR" "$PDIR"
CPORT=$(free_port)
PPORT=$(free_port)
trap '"$TEST_ROOT/scripts/citus.sh" stop "$CDIR" >/dev/null 2>&1; "$TEST_ROOT/scripts/pg.sh" stop "$PDIR" >/dev/null 2>&1; rm -rf "$CDIR" "$PDIR"; test_cleanup' EXIT
CDRFLOW_PGPORT=$CPORT "$TEST_ROOT/scripts/citus.sh" start "$CDIR" >citus.env 2>citus.err || { cat citus.err >&2; bail_out "cannot start Citus"; }
CDRFLOW_PGPORT=$PPORT "$TEST_ROOT/scripts/pg.sh" start "$PDIR" >pg.env || bail_out "cannot start PostgreSQL"
CONF=$TEST_ROOT/tests/data/demo/cdrflow.yaml
TDIR=$PWD
# on_citus|on_pg CMD...: run CMD against the cluster's coordinator / the single server
on_citus() { (eval "$(cat citus.env)" && cd "$TEST_ROOT" && "$@"); }
on_pg() { (eval "$(cat pg.env)" && cd "$TEST_ROOT" && "$@"); }
# bg_citus CMD...: as on_citus, the subshell replaced by CMD (its pid is $!)
bg_citus() { eval "$(cat citus.env)" && cd "$TEST_ROOT" && exec "$@"; }
wsql() { (eval "$(cat citus.env)" && psql -X -h "$PGHOST" -p $((PGPORT + $1)) -Atc "$2"); }

# dump NAME: every table's rows (partitioned parents, plain tables), one JSON
# object a row without the columns that hold the time of the write or a
# sequence number (now(), bigserial), sorted: dump-NAME/TABLE
dump() {
	local d=$TDIR/dump-$1
	rm -rf "$d" && mkdir "$d" &&
	psql -X -Atc "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
		AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1" >"$d/.tables" &&
	while read -r t; do
		psql -X -Atc "SELECT to_jsonb(x) - ARRAY['id', 'applied_at', 'created_at', 'updated_at', 'imported_at',
			'skipped_at', 'first_seen', 'last_seen'] FROM $t x" | LC_ALL=C sort >"$d/$t" || return 1
	done <"$d/.tables"
}
# same NAME [TABLE...]: the dumps of both servers are equal, and not empty
# (but for the TABLEs named)
same() {
	local n=$1
	shift
	on_citus dump "citus-$n" && on_pg dump "pg-$n" &&
	for t in "$@"; do rm -f "dump-citus-$n/$t" "dump-pg-$n/$t"; done &&
	test "$(wc -l <"dump-pg-$n/cdr")" -gt 0 &&
	diff -r "dump-pg-$n" "dump-citus-$n" >"diff-$n" || { head -c 3000 "diff-$n"; false; }
}

# the spool: every shared capture that replays, and a generated stream
mkdir spool spool-kill spool-worker
for c in "$CDRFLOW_SHARED"/captures/*/ami.raw*; do
	n=$(basename "$(dirname "$c")")
	# v1 has no Timestamp header: the collector refuses to replay it (its own test)
	[ "$n" = v1_timestampevents_no ] && continue
	cdrflow_collector --replay "$c" --spool spool --node "$n" -q >/dev/null 2>&1 || bail_out "replay of $n failed"
done
gen() { # EVENTS NODE SPOOL
	python3 "$TEST_ROOT/tests/bench/gen-stream.py" --events "$1" "$CDRFLOW_SHARED"/captures/s0[1245]*/ami.raw* |
		cdrflow_collector --replay - --spool "$3" --node "$2" --fsync off -q >/dev/null
}
gen 40000 gen spool || bail_out "cannot generate a stream"
gen 60000 genkill spool-kill || bail_out "cannot generate a stream"
gen 60000 genworker spool-worker || bail_out "cannot generate a stream"
cat >small.yaml <<YAML
$(cat "$CONF")
etl:
  batch_events: 2000
YAML
grep -q "^etl:" "$CONF" && bail_out "$CONF has an etl: section; small.yaml would repeat it"

test_expect_success 'migrate --distribute refuses a server without Citus (78), changes nothing' '
	{ on_pg "$ETL" migrate --distribute 2>err; test $? = 78; } &&
	grep "Citus is not installed" err &&
	test "$(on_pg psql -X -Atc "select to_regclass(\$\$schema_version\$\$) is null")" = t &&
	{ on_pg "$ETL" --once --distribute 2>err; test $? = 64; }
'

test_expect_success 'migrate --distribute: events, legs, calls by node, rollups by tenant, small tables on every node' '
	on_citus "$ETL" migrate --distribute >out &&
	grep "schema is distributed (Citus)" out &&
	on_pg "$ETL" migrate >/dev/null &&
	on_citus psql -X -Atc "select logicalrelid || \$\$ \$\$ || partmethod::text || \$\$ \$\$ || coalesce(column_to_column_name(logicalrelid, partkey), \$\$-\$\$)
		from pg_dist_partition where logicalrelid::text not like \$\$%\_y2%\$\$ and logicalrelid::text not like \$\$%default\$\$" >dist &&
	grep "^cdr h node$" dist && grep "^cel h node$" dist && grep "^call h node$" dist &&
	grep "^ami_event h node$" dist && grep "^etl_checkpoint h node$" dist && grep "^qos_leg h node$" dist &&
	grep "^rollup_hourly h tenant$" dist && grep "^alert h tenant$" dist &&
	grep "^rollup_country_code n -$" dist && grep "^tenant_role n -$" dist &&
	test "$(on_citus psql -X -Atc "select count(distinct colocationid) from pg_dist_partition where partmethod = \$\$h\$\$")" = 2 &&
	! grep "^schema_version" dist && ! grep "^etl_lock" dist
'

test_expect_success 'the same spool on both: every table has the same rows' '
	on_citus "$ETL" --once -c "$CONF" --spool "$PWD/spool" >c.out 2>c.err &&
	on_pg "$ETL" --once -c "$CONF" --spool "$PWD/spool" >p.out 2>p.err &&
	grep "events=" c.out && sed "s/ seconds=.*//" c.out >c.n && sed "s/ seconds=.*//" p.out >p.n && test_cmp p.n c.n &&
	same load &&
	test "$(wc -l <dump-citus-load/alert)" -gt 0 && test "$(wc -l <dump-citus-load/rollup_hourly)" -gt 0 &&
	test "$(wc -l <dump-citus-load/queue_call)" -gt 0 && test "$(wc -l <dump-citus-load/qos_leg)" -gt 0
'

test_expect_success 'a second --once loads nothing' '
	on_citus "$ETL" --once -c "$CONF" --spool "$PWD/spool" >again 2>&1 &&
	! grep "events=[1-9]" again &&
	same again
'

DAY=2026-11-21..2026-12-06
test_expect_success 'every report template: the same CSV from both, in UTC and in a zone whose midnights cut an hour' '
	# Asia/Kolkata (+05:30): the rollup readers read the cut hours from the
	# legs (0055), and every local hour, day and weekday must be the
	# zone of the report on the workers too, not theirs
	for t in "$TEST_ROOT"/templates/*.yaml; do
		n=$(basename "$t" .yaml) &&
		# a statement is per tenant: every tenant'"'"'s, in one run
		each= && if grep -q "required: yes" "$t"; then each="--each tenant"; fi &&
		for tz in UTC Asia/Kolkata; do
			d=$n && if [ $tz != UTC ]; then d=$n-kolkata; fi &&
			mkdir -p "rc/$d" "rp/$d" &&
			on_citus "$REPORT" run "$n" $each -c "$CONF" --templates "$TEST_ROOT/templates" --from "$DAY" --tz $tz --format csv --out "$TDIR/rc/$d" >/dev/null 2>"rc-$d.err" &&
			on_pg "$REPORT" run "$n" $each -c "$CONF" --templates "$TEST_ROOT/templates" --from "$DAY" --tz $tz --format csv --out "$TDIR/rp/$d" >/dev/null 2>"rp-$d.err" ||
			{ cat "rc-$d.err" "rp-$d.err"; return 1; }
		done
	done &&
	test "$(find rc/tenant-statement-kolkata -name "*.csv" | wc -l)" -ge 5 &&
	test "$(find rc -name "*.csv" | wc -l)" -ge 14 &&
	# the alert listing shows created_at, the wall-clock time of the insert,
	# and is ordered by it: compared without it
	# the fraud digest'"'"'s "Period loaded" tile is the wall-clock time of each
	# warehouse'"'"'s last commit: not compared
	rm -f rc/fraud-digest*/*-loaded.csv rp/fraud-digest*/*-loaded.csv &&
	for f in $(grep -lis "^\"\{0,1\}created" $(find rc rp -name "*.csv")); do
		cut -d, -f2- "$f" >"$f.x" && mv "$f.x" "$f" || return 1
	done &&
	# rows that tie on a template'"'"'s ORDER BY come in any order (cdr-export:
	# legs of one second): every file compared with its rows sorted
	for f in $(find rc rp -name "*.csv"); do
		{ head -1 "$f" && tail -n +2 "$f" | LC_ALL=C sort; } >"$f.x" && mv "$f.x" "$f" || return 1
	done &&
	diff -r rp rc
'

test_expect_success 'every cdrflow-query command: the same output from both' '
	lid=$(on_pg psql -X -Atc "select linkedid from cdr where node = \$\$s05_transfer\$\$ order by calldate limit 1") &&
	while read -r name args; do
		# rows that tie on the sort key come in any order: compared sorted
		on_citus "$QUERY" $args 2>"qc-$name.err" | LC_ALL=C sort >"qc-$name" &&
		on_pg "$QUERY" $args 2>"qp-$name.err" | LC_ALL=C sort >"qp-$name" &&
		! grep -i "error" "qc-$name.err" &&
		test -s "qp-$name" &&
		test_cmp "qp-$name" "qc-$name" || { cat "qc-$name.err"; return 1; }
	done <<-EOF
	calls calls --from $DAY --format csv --limit 100000
	legs calls --from $DAY --legs --format csv --limit 100000
	calls-tenant calls --from $DAY --tenant tenantA --format json
	calls-dst calls --from $DAY --dst 44 --format csv
	hour stats --by hour --from $DAY --format csv
	day stats --by day --from $DAY --format csv
	hour-ny stats --by hour --from $DAY --tz America/New_York --format csv
	day-ny stats --by day --from $DAY --tz America/New_York --format csv
	day-kolkata stats --by day --from $DAY --tz Asia/Kolkata --format csv
	tenant stats --by tenant --from $DAY --format csv
	trunk stats --by trunk --from $DAY --format csv
	dest stats --by destination --from $DAY --format csv
	tenant-base stats --by tenant --from $DAY --source base --format csv
	trunk-base stats --by trunk --from $DAY --source base --format csv
	dest-base stats --by destination --from $DAY --source base --format csv
	flow flow $lid --node s05_transfer
	flow-all flow $lid --node s05_transfer --all-events
	EOF
'

test_expect_success 'RLS: two tenant readers see their own rows only, the same on both' '
	for s in on_citus on_pg; do
		$s psql -X -qAtc "select cdrflow_create_tenant_reader(\$\$tenantA\$\$, \$\$t2610_a\$\$); select cdrflow_create_tenant_reader(\$\$tenantB\$\$, \$\$t2610_b\$\$)" || return 1
	done &&
	for r in t2610_a t2610_b; do
		for s in on_citus on_pg; do
			$s psql -X -U $r -Atc "select (select count(*) || \$\$/\$\$ || count(distinct tenant) from cdr),
				(select count(*) || \$\$/\$\$ || count(distinct tenant) from call),
				(select count(*) from cel), (select count(*) from ami_event),
				(select count(*) from rollup_hourly), (select count(*) from alert),
				(select count(*) from cdr where tenant is distinct from \$\$tenant\$\$ || upper(right(\$\$$r\$\$, 1))),
				cdrflow_current_tenant()" >"rls-$r-$s" || return 1
		done &&
		test_cmp "rls-$r-on_pg" "rls-$r-on_citus" &&
		cut -d"|" -f7 "rls-$r-on_citus" | grep -x 0 &&
		cut -d"|" -f8 "rls-$r-on_citus" | grep -x "tenant[AB]" &&
		cut -d"|" -f1 "rls-$r-on_citus" | grep -x "[1-9][0-9]*/1" &&
		test "$(cut -d"|" -f3 "rls-$r-on_citus")" -gt 0 || return 1
	done &&
	! test_cmp rls-t2610_a-on_citus rls-t2610_b-on_citus >/dev/null &&
	test "$(on_citus psql -X -U t2610_a -Atc "select count(*) from tenant_role")" = 1
'

# mid: the load of NODE on the cluster has committed a batch (and more is to come)
mid() {
	for _ in $(seq 1 600); do
		n=$(on_citus psql -X -Atc "select events from etl_checkpoint where node = \$\$$1\$\$" 2>/dev/null)
		[ -n "$n" ] && [ "$n" -gt 0 ] && return 0
		sleep 0.1
	done
	return 1
}

# After an interrupted run the next one re-reads the open calls' events
# before its checkpoint and counts them in its first batch (etl/load.c
# build_batch), so batch boundaries move, on one server as on Citus: what
# depends on which events a batch holds can differ from an uninterrupted
# run, the fraud rules' alerts (evidence, folding) and endpoint state
# changes whose event times are out of sequence order across a boundary
# (fraud_state_step).  Every other table must be equal.
test_expect_success 'kill -9 of the ETL mid-load, then --once: nothing lost, nothing twice' '
	on_pg "$ETL" --once -c "$TDIR/small.yaml" --spool "$PWD/spool-kill" >/dev/null 2>&1 &&
	{ bg_citus "$ETL" --once -c "$TDIR/small.yaml" --spool "$PWD/spool-kill" >k1.out 2>k1.err & pid=$!; } &&
	mid genkill && kill -9 $pid; wait $pid; echo "exit $?" >k1.rc &&
	before=$(on_citus psql -X -Atc "select events from etl_checkpoint where node = \$\$genkill\$\$") &&
	test "$before" -lt "$(on_pg psql -X -Atc "select events from etl_checkpoint where node = \$\$genkill\$\$")" &&
	on_citus "$ETL" --once -c "$TDIR/small.yaml" --spool "$PWD/spool-kill" >k2.out 2>k2.err &&
	grep "events=[1-9]" k2.out &&
	same kill alert endpoint_state_history
'

test_expect_success 'a worker restarted mid-load: the run fails or finishes, the next completes; nothing lost, nothing twice' '
	on_pg "$ETL" --once -c "$TDIR/small.yaml" --spool "$PWD/spool-worker" >/dev/null 2>&1 &&
	{ bg_citus "$ETL" --once -c "$TDIR/small.yaml" --spool "$PWD/spool-worker" >w1.out 2>w1.err & pid=$!; } &&
	mid genworker &&
	runuser_pg() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; } &&
	bin=$(CDRFLOW_CITUS_PREFIX="$TEST_ROOT/build-citus" "$TEST_ROOT/scripts/citus.sh" build) &&
	runuser_pg "$bin/pg_ctl" -D "$CDIR/worker1" -m immediate -w restart -l "$CDIR/worker1.log" >/dev/null &&
	{ wait $pid; echo "exit $?" >w1.rc; } &&
	on_citus "$ETL" --once -c "$TDIR/small.yaml" --spool "$PWD/spool-worker" >w2.out 2>w2.err &&
	on_citus "$ETL" --once -c "$TDIR/small.yaml" --spool "$PWD/spool-worker" >w3.out 2>&1 &&
	! grep "events=[1-9]" w3.out &&
	same worker alert endpoint_state_history
'

test_expect_success 'retention on the distributed schema drops the same partitions' '
	for s in on_citus on_pg; do
		$s psql -X -qAtc "select cdrflow_ensure_month(\$\$2025-01-15\$\$), cdrflow_ensure_month(\$\$2025-02-15\$\$)" >/dev/null || return 1
	done &&
	test "$(on_citus psql -X -Atc "select count(*) from pg_dist_partition where logicalrelid::text like \$\$%_y2025m0%\$\$")" = 8 &&
	on_citus "$ETL" retention --keep 13mo >ret-c 2>&1 &&
	on_pg "$ETL" retention --keep 13mo >ret-p 2>&1 &&
	cat ret-c && test_cmp ret-p ret-c &&
	grep "dropped 8 partitions" ret-c &&
	test "$(on_citus psql -X -Atc "select count(*) from pg_class where relname like \$\$%_y2025m0%\$\$")" = 0 &&
	same retention alert endpoint_state_history
'

test_expect_success 'a later migrate on the distributed schema: up to date, still distributed' '
	on_citus "$ETL" migrate >out &&
	grep "up to date" out && grep "0 tables distributed now" out &&
	# 0078 run again on the distributed schema: every rollup is distributed,
	# so none is rewritten, and nothing fails
	test "$(on_citus psql -X -Atc "select cdrflow_rollups_in_time_order()")" = 0
'

test_done
