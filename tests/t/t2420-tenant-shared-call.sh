#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='a call shared by two tenants: each reader sees only its own channels'"'"' events (cel, ami_event)'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
[ -x "$ETL" ] || bail_out "no $ETL (run make)"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || skip_all "PostgreSQL server binaries are not installed"
test_have_prereq PYTHON || skip_all "python3 is needed to build the shared call"

PGDIR=$(mktemp -d /tmp/cdrflow-t2420.XXXXXX)
export CDRFLOW_PGPORT=$(free_port)
test_at_exit '"$TEST_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"'
eval "$("$TEST_ROOT/scripts/pg.sh" start "$PGDIR")" || bail_out "cannot start PostgreSQL"
"$ETL" migrate >/dev/null || bail_out "migrate failed"
S07=$(capture_path s07_trunk_tenant) || bail_out "capture s07_trunk_tenant not found"
q() { psql -X -Atc "$1"; }
ra() { psql -X -U reader_a -Atc "$1"; }
rb() { psql -X -U reader_b -Atc "$1"; }
cat >etl.yaml <<'YAML'
tenants:
  trunks: "SIP/loop-*"
  rules:
    - tenant: tenantA
      accountcode: tenantA
    - tenant: tenantB
      accountcode: tenantB
YAML

# The real capture as it is (node orig), then the same bytes with one
# tenantB call's linkedid replaced by one tenantA call's linkedid (node x):
# one call with legs of both tenants, as a transfer to another tenant's DID
# makes it.
test_expect_success 'setup: s07 as captured, and with a tenantB call merged into a tenantA call' '
	cdrflow_collector --replay "$S07" --spool sp --node orig >/dev/null &&
	"$ETL" --once -c etl.yaml --spool sp >/dev/null &&
	LA=$(q "select min(linkedid) from cdr where node = '"'"'orig'"'"' and tenant = '"'"'tenantA'"'"'") &&
	LB=$(q "select min(linkedid) from cdr where node = '"'"'orig'"'"' and tenant = '"'"'tenantB'"'"'
		and linkedid not in (select linkedid from cdr where tenant is distinct from '"'"'tenantB'"'"')") &&
	test -n "$LA" && test -n "$LB" && echo "LA=$LA LB=$LB" &&
	xz -dcf "$S07" | "$PYTHON" -c "
import re, sys
data = sys.stdin.buffer.read()
pat = re.compile(rb\"^(Linkedid|LinkedID): \" + re.escape(b\"$LB\") + rb\"\\r\$\", re.M | re.I)
out, n = pat.subn(lambda m: m.group(1) + b\": $LA\\r\", data)
assert n > 0, n
sys.stdout.buffer.write(out)
" >shared.raw &&
	cdrflow_collector --replay shared.raw --spool sp --node x >/dev/null &&
	"$ETL" --once -c etl.yaml --spool sp >/dev/null &&
	test "$(q "select count(distinct tenant) from cdr where node = '"'"'x'"'"' and linkedid = '"'"'$LA'"'"'")" = 2 &&
	q "select cdrflow_create_tenant_reader('"'tenantA'"', '"'reader_a'"'), cdrflow_create_tenant_reader('"'tenantB'"', '"'reader_b'"')" >/dev/null
'

# what each tenant owns of the shared call, as the owner sees it
own() { # TENANT REL CHANCOL: rows of the shared call on channels of TENANT legs
	q "select count(*) from $2 e where e.node = 'x' and e.linkedid = '$LA' and (
		e.uniqueid in (select uniqueid from cdr where node = 'x' and linkedid = '$LA' and tenant = '$1')
		or e.$3 in (select dstchannel from cdr where node = 'x' and linkedid = '$LA' and tenant = '$1'
			and dstchannel not in (select channel from cdr where node = 'x' and linkedid = '$LA'
				and tenant is distinct from '$1')))"
}

test_expect_success 'reader A sees only the events of its own channels of the shared call, none of B'"'"'s' '
	all=$(q "select count(*) from cel where node = '"'"'x'"'"' and linkedid = '"'"'$LA'"'"'") &&
	a=$(ra "select count(*) from cel where node = '"'"'x'"'"' and linkedid = '"'"'$LA'"'"'") &&
	echo "cel of the shared call: $all, reader A sees $a, owns $(own tenantA cel channame)" &&
	test "$a" -gt 0 && test "$a" -lt "$all" && test "$a" = "$(own tenantA cel channame)" &&
	test "$(ra "select count(*) from cel where node = '"'"'x'"'"' and accountcode = '"'"'tenantB'"'"'")" = 0 &&
	test "$(ra "select count(*) from cel c where node = '"'"'x'"'"' and uniqueid in
		(select uniqueid from cdr where tenant = '"'"'tenantB'"'"')")" = 0 &&
	a=$(ra "select count(*) from ami_event where node = '"'"'x'"'"' and linkedid = '"'"'$LA'"'"'") &&
	test "$a" -gt 0 && test "$a" = "$(own tenantA ami_event channel)" &&
	test "$(ra "select count(*) from ami_event where node = '"'"'x'"'"' and fields->>'"'"'AccountCode'"'"' = '"'"'tenantB'"'"'")" = 0
'

test_expect_success 'reader B likewise sees only its own channels'"'"' events of it' '
	b=$(rb "select count(*) from cel where node = '"'"'x'"'"' and linkedid = '"'"'$LA'"'"'") &&
	echo "reader B sees $b, owns $(own tenantB cel channame)" &&
	test "$b" -gt 0 && test "$b" = "$(own tenantB cel channame)" &&
	test "$(rb "select count(*) from cel where node = '"'"'x'"'"' and linkedid = '"'"'$LA'"'"' and accountcode = '"'"'tenantA'"'"'")" = 0 &&
	b=$(rb "select count(*) from ami_event where node = '"'"'x'"'"' and linkedid = '"'"'$LA'"'"'") &&
	test "$b" = "$(own tenantB ami_event channel)"
'

test_expect_success 'a call of one tenant only is still visible whole to it, and not at all to the other' '
	all=$(q "select count(*) from cel where node = '"'"'orig'"'"' and linkedid = '"'"'$LA'"'"'") &&
	test "$(ra "select count(*) from cel where node = '"'"'orig'"'"' and linkedid = '"'"'$LA'"'"'")" = "$all" &&
	test "$(rb "select count(*) from cel where node = '"'"'orig'"'"' and linkedid = '"'"'$LA'"'"'")" = 0
'

# The events of a call are scoped when its legs are stored, reading only
# events from the lowest seq a call still open can have (the checkpoint's
# cdr_seq): in batches of 100 events, and with a loader killed and resumed
# (its engine rebuilt from the checkpoint), every event gets the tenants a
# one-batch load gives it.
test_expect_success 'small batches, kills and resumes: every event scoped as in one batch' '
	cdrflow_collector --replay shared.raw --spool sp2 --node y >/dev/null &&
	{ printf "etl:\n  batch_events: 100\n"; cat etl.yaml; } >small.yaml &&
	for i in 1 2 3 4 5; do
		kill_after 6 "$ETL" --once -c small.yaml --spool sp2
	done &&
	"$ETL" --once -c small.yaml --spool sp2 >/dev/null &&
	for rel in cel ami_event; do
		q "select seq, tenants from $rel where node = '"'"'x'"'"' order by seq" >x.$rel &&
		q "select seq, tenants from $rel where node = '"'"'y'"'"' order by seq" >y.$rel &&
		test_cmp x.$rel y.$rel || return 1
	done &&
	test "$(q "select count(*) from ami_event where node = '"'"'y'"'"' and tenants is not null")" -gt 0 &&
	test "$(q "select cdr_seq > 0 and cdr_seq <= last_seq from etl_checkpoint where node = '"'"'y'"'"'")" = t
'

# The loader writes each event row with the tenants the rule gives when
# its conversation's legs are in the same batch (etl/evscope.c), so that
# the analytics step rewrites only the rows of calls spanning batches.
# Without the step, a one-batch load must already hold what the step
# decides, for the shared call too; and in batches of 100 events, where
# most calls span batches, the step must still reach the same result.
test_expect_success 'event rows are written with their tenants: those the rule, run afresh, gives' '
	cdrflow_collector --replay shared.raw --spool sp3 --node z >/dev/null &&
	q "delete from analytics_step where fn = '"'"'cdrflow_event_scope_step'"'"'" >/dev/null &&
	"$ETL" --once -c etl.yaml --spool sp3 >/dev/null &&
	q "insert into analytics_step (fn, ord) values ('"'"'cdrflow_event_scope_step'"'"', 950)" >/dev/null &&
	for rel in cel ami_event; do
		q "select seq, tenants from $rel where node = '"'"'x'"'"' order by seq" >x.$rel &&
		q "select seq, tenants from $rel where node = '"'"'z'"'"' order by seq" >z.$rel &&
		test_cmp x.$rel z.$rel || return 1
	done &&
	test "$(q "select count(*) from ami_event where node = '"'"'z'"'"' and cardinality(tenants) = 1")" -gt 0 &&
	q "select count(*) from cel where node = '"'"'z'"'"' and linkedid = '"'"'$LA'"'"' and tenants is not null" >n.shared &&
	test "$(cat n.shared)" -gt 0 &&
	q "update cel set tenants = null where node = '"'"'z'"'"'; update ami_event set tenants = null where node = '"'"'z'"'"'" &&
	q "select cdrflow_event_scope('"'"'z'"'"', array(select distinct linkedid from cdr where node = '"'"'z'"'"'), 0)" >/dev/null &&
	for rel in cel ami_event; do
		q "select seq, tenants from $rel where node = '"'"'z'"'"' order by seq" >z2.$rel &&
		test_cmp z.$rel z2.$rel || return 1
	done
'

test_done
