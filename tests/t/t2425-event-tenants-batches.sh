#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='event tenants: the loader writes each event row with the tenants the rule (cdrflow_event_scope) gives, in any batch size, across kills'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
[ -x "$ETL" ] || bail_out "no $ETL (run make)"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || skip_all "PostgreSQL server binaries are not installed"
capture_path s05_transfer >/dev/null || bail_out "captures not found"

PGDIR=$(mktemp -d /tmp/cdrflow-t2425.XXXXXX)
export CDRFLOW_PGPORT=$(free_port)
test_at_exit '"$TEST_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"'
eval "$("$TEST_ROOT/scripts/pg.sh" start "$PGDIR")" || bail_out "cannot start PostgreSQL"
"$ETL" migrate >/dev/null || bail_out "migrate failed"
q() { psql -X -Atc "$1"; }

# Tenants by accountcode and by channel family, so that most captured
# calls have tenant legs and many have legs of two tenants (shared calls).
# (every event stored: the more rows, the more the rule is checked on)
cat >etl.yaml <<'YAML'
etl:
  ami_event_store: all
tenants:
  trunks: "SIP/loop-*,PJSIP/loop*"
  rules:
    - { tenant: tenantA, accountcode: tenantA }
    - { tenant: tenantB, accountcode: tenantB }
    - { tenant: "t local 20", channel: "Local/20*" }
    - { tenant: "t,24", channel: "Local/24*" }
    - { tenant: trunkside, channel: "*loop*" }
    - { tenant: sip1, channel: "SIP/1*" }
YAML

# Every capture of real Asterisk, each its own node.
test_expect_success 'setup: every capture replayed into one spool' '
	n=0 &&
	for f in "$CDRFLOW_SHARED"/captures/*/ami.raw* "$CDRFLOW_SHARED"/captures/testsuite/*/ami.raw*; do
		node=$(basename "$(dirname "$f")") &&
		case $node in
		v1_*) # no Timestamp headers: not replayable; its live spool is there
			tar -xJf "$(dirname "$f")/spool.tar.xz" && mv spool/lab "sp/$node" ;;
		*) cdrflow_collector --replay "$f" --spool sp --node "$node" >/dev/null ;;
		esac &&
		cp -r sp/"$node" "$node.seg" || return 1
		n=$((n + 1))
	done &&
	echo "$n captures" && test "$n" -ge 20
'

# batches of 100 events for the captures with transfers, queues, forks,
# tenants and trunks (every capture in one batch below)
SMALL="s04_queue s05_transfer s06_fork s07_trunk_tenant a22_pjsip_mix party_transfer"

# The reference: whatever the loader wrote, the rule run afresh over every
# conversation of a node from its first event.
reference() { # NODE: the rule's answer for every event of NODE, as seq|tenants lines in x.cel, x.ami_event
	q "update cel set tenants = null where node = '$1'; update ami_event set tenants = null where node = '$1'" &&
	q "select cdrflow_event_scope('$1', array(select distinct linkedid from cdr where node = '$1'), 0)" >/dev/null &&
	for rel in cel ami_event; do
		q "select seq, tenants from $rel where node = '$1' order by seq" >ref.$1.$rel || return 1
	done
}
snapshot() { # NODE SUFFIX
	for rel in cel ami_event; do
		q "select seq, tenants from $rel where node = '$1' order by seq" >got.$1.$rel.$2 || return 1
	done
}
nodes() { q "select distinct node from cel union select distinct node from ami_event order by 1"; }

test_expect_success 'batches of 100 events: every event row holds what the rule gives' '
	sed "s/^etl:\$/etl:\\n  batch_events: 100/" etl.yaml >small.yaml &&
	rm -rf sp1 && mkdir sp1 &&
	for node in $SMALL; do cp -r $node.seg sp1/$node || return 1; done &&
	"$ETL" --once -c small.yaml --spool sp1 >/dev/null &&
	for node in $SMALL; do
		snapshot "$node" small &&
		reference "$node" >/dev/null &&
		test_cmp ref.$node.cel got.$node.cel.small && test_cmp ref.$node.ami_event got.$node.ami_event.small || return 1
	done &&
	with=$(q "select count(*) from ami_event where tenants is not null") &&
	shared=$(q "select count(*) from (select linkedid from cdr where tenant is not null group by node, linkedid
		having count(distinct tenant) > 1) s") &&
	part=$(q "select count(*) from ami_event e where tenants is not null and exists (select 1 from cdr l
		where l.node = e.node and l.linkedid = e.linkedid and l.tenant is not null and not l.tenant = any (e.tenants))") &&
	echo "events with tenants: $with; shared calls: $shared; events of a shared call seen by a part only: $part" &&
	test "$with" -gt 1000 && test "$shared" -ge 3 && test "$part" -gt 50
'

test_expect_success 'one batch: the loader alone (the step removed) already wrote every row right' '
	q "drop schema public cascade; create schema public" >/dev/null 2>&1 &&
	"$ETL" migrate -q >/dev/null &&
	q "delete from analytics_step where fn = '"'"'cdrflow_event_scope_step'"'"'" >/dev/null &&
	sed "s/^etl:\$/etl:\\n  batch_events: 100000000/" etl.yaml >one.yaml &&
	"$ETL" --once -c one.yaml --spool sp >/dev/null &&
	nodes >nodes && test "$(wc -l <nodes)" -ge 20 &&
	for node in $(cat nodes); do
		snapshot "$node" one &&
		reference "$node" >/dev/null &&
		test_cmp ref.$node.cel got.$node.cel.one && test_cmp ref.$node.ami_event got.$node.ami_event.one || return 1
	done
'

test_expect_success 'batches of 150 with a loader killed and resumed: the same' '
	q "drop schema public cascade; create schema public" >/dev/null 2>&1 &&
	"$ETL" migrate -q >/dev/null &&
	sed "s/^etl:\$/etl:\\n  batch_events: 150/" etl.yaml >fifty.yaml &&
	rm -rf sp2 && mkdir sp2 && cp -r s05_transfer.seg sp2/s05_transfer && cp -r a22_pjsip_mix.seg sp2/a22_pjsip_mix &&
	for i in 1 2 3 4 5 6; do
		kill_after 5 "$ETL" --once -c fifty.yaml --spool sp2
	done &&
	"$ETL" --once -c fifty.yaml --spool sp2 >/dev/null &&
	for node in s05_transfer a22_pjsip_mix; do
		snapshot "$node" kill &&
		test_cmp ref.$node.cel got.$node.cel.kill && test_cmp ref.$node.ami_event got.$node.ami_event.kill || return 1
	done
'

# A run stores channel events (ami_event_store: all) and is killed; the
# next run, configured to store fewer (the default), replays what the first
# stored: a conversation with rows from the first run is not "whole", even
# when those rows are channel events only (v4: CEL disabled).
test_expect_success 'a resume under another ami_event_store: rows of the earlier run are scoped too' '
	q "drop schema public cascade; create schema public" >/dev/null 2>&1 &&
	"$ETL" migrate -q >/dev/null &&
	rm -rf sp3 && mkdir sp3 && cp -r v4_cel_disabled.seg sp3/v4_cel_disabled && cp -r s05_transfer.seg sp3/s05_transfer &&
	grep -v "ami_event_store" fifty.yaml >fifty-default.yaml &&
	for i in 1 2 3 4 5; do
		kill_after 5 "$ETL" --once -c fifty.yaml --spool sp3
	done &&
	"$ETL" --once -c fifty-default.yaml --spool sp3 >/dev/null &&
	for node in v4_cel_disabled s05_transfer; do
		snapshot "$node" mixed &&
		reference "$node" >/dev/null &&
		test_cmp ref.$node.cel got.$node.cel.mixed && test_cmp ref.$node.ami_event got.$node.ami_event.mixed ||
			return 1
	done
'

# The loader tells the step the batch's conversations (0048) only when no
# event row lies beyond the checkpoint: a load position moved back stores
# every event again (here storing fewer of them), and the step reads the
# batch's rows itself: the rows of both loads end as the rule gives, the
# first load's emptied here.
test_expect_success 'a load position moved back (event rows beyond it): the step reads the batch itself' '
	n=s05_transfer &&
	before=$(q "select count(*) from cel where node = '"'"'$n'"'"'") &&
	q "update etl_checkpoint set segno = 0, seg_offset = 0, last_seq = 0, cdr_segno = 0, cdr_offset = 0,
		cdr_done_seq = 0, cdr_seq = 0 where node = '"'"'$n'"'"'" &&
	# the stored rows lose their tenants: the step must give them back
	q "update cel set tenants = null where node = '"'"'$n'"'"'; update ami_event set tenants = null where node = '"'"'$n'"'"'" &&
	sed "s/^etl:\$/etl:\\n  ami_event_store: analytics/" fifty-default.yaml >fifty-an.yaml &&
	"$ETL" --once -c fifty-an.yaml --spool sp3 >/dev/null 2>&1 &&
	test "$(q "select count(*) from cel where node = '"'"'$n'"'"'")" -gt "$before" &&
	for rel in cel ami_event; do
		q "select seq, tenants from $rel where node = '"'"'$n'"'"' order by seq, tenants::text" >got.$n.$rel.rewound ||
			return 1
	done &&
	reference "$n" >/dev/null &&
	for rel in cel ami_event; do
		q "select seq, tenants from $rel where node = '"'"'$n'"'"' order by seq, tenants::text" >ref.$n.$rel.rewound &&
		test_cmp ref.$n.$rel.rewound got.$n.$rel.rewound || return 1
	done &&
	test "$(q "select count(*) from ami_event where node = '"'"'$n'"'"' and tenants is not null")" -gt 100
'

test_done
