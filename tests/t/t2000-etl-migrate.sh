#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='cdrflow-etl migrate against a real private PostgreSQL cluster'
. "$(dirname "$0")/../lib/test-lib.sh"

ETL=$CDRFLOW_BUILD/cdrflow-etl
[ -x "$ETL" ] || bail_out "no $ETL (run make)"
command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 ||
	skip_all "PostgreSQL server binaries are not installed"

# the cluster lives outside the repo so the postgres user can reach it
PGDIR=$(mktemp -d /tmp/cdrflow-t2000.XXXXXX)
export CDRFLOW_PGPORT=$(free_port)
stop_pg() { "$TEST_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"; }
test_at_exit 'stop_pg'
eval "$("$TEST_ROOT/scripts/pg.sh" start "$PGDIR")" || bail_out "cannot start PostgreSQL"
# the newest migration in sql/ is what the binary must reach
LATEST=$(ls "$TEST_ROOT"/sql/[0-9]*.sql | sed 's|.*/0*\([0-9][0-9]*\)_[^/]*$|\1|' | sort -n | tail -n 1)
NMIG=$(ls "$TEST_ROOT"/sql/[0-9]*.sql | wc -l)

test_expect_success 'migrate creates the schema' '
	"$ETL" migrate >out 2>err &&
	grep -q "schema migrated from version 0 to $LATEST" out &&
	test "$(psql -Atc "select max(version) from schema_version")" = "$LATEST" &&
	"$ETL" version | grep -q "schema version $LATEST (this cdrflow-etl knows up to $LATEST)"
'

test_expect_success 'the warehouse tables exist, partitioned by month' '
	for t in cel cdr call ami_event; do
		test "$(psql -Atc "select relkind from pg_class where relname = '"'"'$t'"'"'")" = p || return 1
	done &&
	test "$(psql -Atc "select count(*) from pg_class where relname = '"'"'etl_checkpoint'"'"'")" = 1 &&
	psql -Atc "select cdrflow_ensure_month('"'"'2026-11-21 19:15:10+00'"'"'), cdrflow_ensure_month('"'"'2026-11-05+00'"'"')" &&
	test "$(psql -Atc "select count(*) from pg_inherits i join pg_class c on c.oid = i.inhrelid where c.relname like '"'"'%_y2026m11'"'"'")" = 4
'

test_expect_success 'migrate is idempotent' '
	"$ETL" migrate >out &&
	grep -q "schema is up to date at version $LATEST" out &&
	test "$(psql -Atc "select count(*) from schema_version")" = "$NMIG"
'

test_expect_success 'a newer schema is refused with exit 78' '
	psql -qc "insert into schema_version values (999, '"'"'from the future'"'"')" &&
	test_exit_code 78 "$ETL" migrate 2>err &&
	grep -q "newer than this cdrflow-etl" err &&
	psql -qc "delete from schema_version where version = 999"
'

test_expect_success 'an unreachable database is "retry later" (69), one line on stderr' '
	PGHOST=/nonexistent test_exit_code 69 "$ETL" migrate 2>err &&
	test "$(wc -l <err)" = 1 &&
	grep -q "cannot connect to PostgreSQL" err
'

test_expect_success 'the password never appears in messages (and --db refuses one: it would show in ps)' '
	test_exit_code 64 "$ETL" migrate --db "host=/nonexistent user=x password=hunter2-secret" 2>err &&
	! grep -q hunter2 err &&
	PGPASSWORD=hunter2-secret test_exit_code 69 "$ETL" migrate --db "host=/nonexistent user=x" 2>err2 &&
	! grep -q hunter2 err2
'

test_expect_success 'usage errors exit 64' '
	test_exit_code 64 "$ETL" 2>err &&
	test_exit_code 64 "$ETL" frobnicate 2>err &&
	grep -q "unknown command" err &&
	"$ETL" --help >out && grep -q "cdrflow-etl migrate" out
'

test_done
