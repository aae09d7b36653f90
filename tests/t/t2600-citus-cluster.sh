#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='scripts/citus.sh: a real Citus cluster (coordinator + 2 workers) built from ../shared/vendor'
. "$(dirname "$0")/../lib/test-lib.sh"

require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
[ -x "$ETL" ] || bail_out "no $ETL (run make)"
ls /usr/lib/postgresql/15/bin/postgres >/dev/null 2>&1 || bail_out "PostgreSQL 15 is not installed (scripts/install-deps.sh)"
[ -f "$CDRFLOW_SHARED/vendor/citus-13.2.2.tar.gz" ] || bail_out "no $CDRFLOW_SHARED/vendor/citus-13.2.2.tar.gz"
export CDRFLOW_CITUS_TARBALL=$CDRFLOW_SHARED/vendor/citus-13.2.2.tar.gz

CDIR=$(mktemp -d /tmp/cdrflow-t2600.XXXXXX)
export CDRFLOW_PGPORT=$(free_port)
test_at_exit '"$TEST_ROOT/scripts/citus.sh" stop "$CDIR" >/dev/null 2>&1; rm -rf "$CDIR"'

test_expect_success 'start builds or finds Citus and registers two workers' '
	"$TEST_ROOT/scripts/citus.sh" start "$CDIR" >env 2>build.err || { cat build.err; false; } &&
	eval "$(cat env)" &&
	test "$(psql -Atc "select citus_version()" | cut -d" " -f1-2)" = "Citus 13.2.2" &&
	test "$(psql -Atc "select count(*) from citus_get_active_worker_nodes()")" = 2
'

test_expect_success 'a distributed table spreads its shards over both workers and answers from all' '
	eval "$(cat env)" &&
	psql -qAtc "create table probe (node text, n int); select create_distributed_table(\$\$probe\$\$, \$\$node\$\$)" >/dev/null &&
	psql -qAtc "insert into probe select \$\$node\$\$ || (i % 7), i from generate_series(1, 7000) i" &&
	test "$(psql -Atc "select count(*), sum(n) from probe")" = "7000|24503500" &&
	test "$(psql -Atc "select count(distinct nodeport) from citus_shards where table_name = \$\$probe\$\$::regclass")" = 2
'

test_expect_success 'stop and start again: the same cluster, data kept, no rebuild' '
	"$TEST_ROOT/scripts/citus.sh" stop "$CDIR" &&
	! psql -Atc "select 1" 2>/dev/null &&
	"$TEST_ROOT/scripts/citus.sh" start "$CDIR" >env2 2>err2 &&
	test ! -s err2 &&
	test_cmp env env2 &&
	test "$(psql -Atc "select count(*) from probe")" = 7000
'

test_expect_success 'cdrflow-etl migrate and a load run on the coordinator (tables not yet distributed)' '
	eval "$(cat env)" &&
	"$ETL" migrate >/dev/null &&
	cdrflow_collector --replay "$(capture_path s01_answered)" --spool spool --node s01 >/dev/null &&
	"$ETL" --once --spool spool >out &&
	test "$(psql -Atc "select count(*) from cdr where node = \$\$s01\$\$")" -gt 0
'

test_expect_success 'bad usage is exit 64' '
	{ "$TEST_ROOT/scripts/citus.sh" 2>/dev/null; test $? = 64; } &&
	{ "$TEST_ROOT/scripts/citus.sh" start 2>/dev/null; test $? = 64; }
'

test_done
