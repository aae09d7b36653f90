#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='tenant roles cannot take or hold the ETL locks; lock waits end with a clear message'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
[ -x "$ETL" ] || bail_out "no $ETL (run make)"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || skip_all "PostgreSQL server binaries are not installed"

PGDIR=$(mktemp -d /tmp/cdrflow-t2410.XXXXXX)
export CDRFLOW_PGPORT=$(free_port)
test_at_exit '"$TEST_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"'
eval "$("$TEST_ROOT/scripts/pg.sh" start "$PGDIR")" || bail_out "cannot start PostgreSQL"
S01=$(capture_path s01_answered) || bail_out "capture s01_answered not found"
q() { psql -X -Atc "$1"; }
SUPER=$PGUSER
sq() { psql -X -U "$SUPER" -Atc "$1"; }
CELS=$(xz -dcf "$S01" | grep -c '^Event: CEL'$'\r''$')
# hold SQL ROLE SECONDS: run SQL as ROLE in a session that stays open; waits until it ran
hold() {
	psql -X -U "$2" -Atc "$1" -c "select pg_sleep($3)" >/dev/null 2>&1 &
	HOLD_PID=$!
	register_pid $HOLD_PID
	wait_for "test \"\$(sq \"select count(*) from pg_stat_activity where usename = '$2' and query like '%pg_sleep%'\")\" = 1" 10
}

unhold() { sq "select pg_terminate_backend(pid) from pg_stat_activity where usename = '$1'" >/dev/null; }

# the ETL runs as a non-superuser owner of its database, as in production
test_expect_success 'setup: a non-superuser ETL owner, its database, a tenant reader' '
	q "create role etl_owner login createrole" && q "create database owned owner etl_owner" &&
	export PGUSER=etl_owner PGDATABASE=owned &&
	"$ETL" migrate >/dev/null &&
	q "select cdrflow_create_tenant_reader('"'tenantA'"', '"'reader_a'"')" >/dev/null &&
	cdrflow_collector --replay "$S01" --spool sp --node n1 >/dev/null
'

test_expect_success 'a reader holding the old advisory keys of load and migrate stops nothing' '
	hold "select pg_advisory_lock(7310583152), pg_advisory_lock(7310583151)" reader_a 60 &&
	test "$(sq "select count(*) from pg_locks where locktype = '"'"'advisory'"'"' and granted")" = 2 &&
	"$ETL" --once --spool sp >out && grep -q "^etl: events=" out &&
	test "$(q "select count(*) from cel")" = "$CELS" &&
	timeout 20 "$ETL" migrate >out && grep -q "up to date" out
'

test_expect_success 'a reader can neither lock nor read the lock table (nor etl_skip)' '
	test_exit_code 1 psql -X -U reader_a -Atc "select * from etl_lock for update" 2>err &&
	grep -q "permission denied" err &&
	test_exit_code 1 psql -X -U reader_a -Atc "begin; lock table etl_lock in access share mode" 2>err &&
	grep -q "permission denied" err &&
	test_exit_code 1 psql -X -U reader_a -Atc "select * from etl_skip" 2>err &&
	grep -q "permission denied" err
'

test_expect_success 'another run holding the load lock: --once waits lock_timeout, exits 75 naming the holder' '
	psql -X -Atc "begin" -c "select name from etl_lock where name = '"'"'load'"'"' for update" \
		-c "select pg_sleep(30)" "application_name=cdrflow-etl\\ load\\ lock" >/dev/null 2>&1 &
	register_pid $! &&
	wait_for "test \"\$(q \"select count(*) from pg_stat_activity where application_name = '"'"'cdrflow-etl load lock'"'"' and query like '"'"'%pg_sleep%'"'"'\")\" = 1" 10 &&
	start=$(date +%s) &&
	PGOPTIONS="-c lock_timeout=1s" test_exit_code 75 "$ETL" --once --spool sp 2>err && cat err &&
	test $(( $(date +%s) - start )) -lt 10 &&
	grep -q "another cdrflow-etl holds the load lock (row .load. of etl_lock: pid [0-9]*, user etl_owner" err
'

test_expect_success 'migrate behind a reader'"'"'s open transaction on cel: 75 with a hint, not an endless wait' '
	unhold reader_a &&
	hold "begin; select count(*) from cel" reader_a 60 &&
	q "create table sv_keep as select * from schema_version where version >= 13" &&
	q "delete from schema_version where version >= 13" &&
	start=$(date +%s) &&
	PGOPTIONS="-c lock_timeout=1s" test_exit_code 75 "$ETL" migrate 2>err && cat err &&
	test $(( $(date +%s) - start )) -lt 10 &&
	grep -q "migration 0013 (hardening) failed: 55P03: .*lock timeout (a lock wait passed lock_timeout: a long transaction holds a lock on a table this changes" err &&
	unhold reader_a &&
	q "insert into schema_version select * from sv_keep where version > 13; drop table sv_keep" &&
	"$ETL" migrate >out 2>out.err && grep -q "migrated from version 12 to [0-9][0-9]*$" out &&
	grep -q "applied migration 0013: hardening" out.err
'

test_done
