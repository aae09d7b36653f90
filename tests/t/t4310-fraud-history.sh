#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='fraud rules over a long history (sql/0083): a batch reads the conversations its windows and instants reach, and raises exactly the alerts a read of all max_call_duration raises'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
SYNC=$CDRFLOW_BUILD/tests/fraud-sync
GEN=$TEST_ROOT/tests/fraud/gen-traffic.py
[ -x "$ETL" ] || bail_out "no $ETL (run make)"
[ -x "$SYNC" ] || bail_out "no $SYNC (run make test-programs)"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || skip_all "PostgreSQL server binaries are not installed"
capture_path s07_trunk_tenant >/dev/null || bail_out "captures not found"

PGDIR=$(mktemp -d /tmp/cdrflow-t4310.XXXXXX)
export CDRFLOW_PGPORT=$(free_port)
test_at_exit '"$TEST_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"'
eval "$("$TEST_ROOT/scripts/pg.sh" start "$PGDIR")" || bail_out "cannot start PostgreSQL"
q() { psql -X -Atc "$1"; }
# A fresh warehouse whose rules' hits, batch by batch, are kept in
# hit_log (alerts fold hits: a hit lost would not always show in them).
reset_db() {
	psql -X -qc 'DROP SCHEMA public CASCADE; CREATE SCHEMA public' 2>/dev/null && "$ETL" migrate -q >/dev/null &&
	psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE TABLE hit_log (rule text, tenant text, subject text, window_start timestamptz, window_end timestamptz,
		      evidence text[], details jsonb);
CREATE FUNCTION test_log_hit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.hit_log VALUES (NEW.rule, NEW.tenant, NEW.subject, NEW.window_start, NEW.window_end,
					  NEW.evidence, NEW.details);
	RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION fraud_hit_table() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	IF to_regclass('pg_temp.fraud_hit') IS NOT NULL THEN
		DROP TABLE pg_temp.fraud_hit;
	END IF;
	CREATE TEMP TABLE fraud_hit (
		rule text NOT NULL, tenant text NOT NULL, subject text NOT NULL,
		window_start timestamptz NOT NULL, window_end timestamptz NOT NULL,
		evidence text[] NOT NULL, details jsonb NOT NULL
	) ON COMMIT DROP;
	CREATE TRIGGER log_hit AFTER INSERT ON pg_temp.fraud_hit FOR EACH ROW EXECUTE FUNCTION public.test_log_hit();
END $$;
SQL
}

# Every hit of every batch, and the alerts (without the columns a clock or
# a sequence fills).
hits() {
	q "select * from hit_log order by 1, 2, 3, 4, 5, 6::text, 7::text" >"$1" &&
	q "select rule, kind, tenant, severity, subject, window_start, window_end, evidence, hits, details
		from alert order by rule, tenant, subject, window_start, window_end" >"$1.alerts"
}

# Ten minutes of the captures' calls, repeated with new ids (the ETL
# benchmark's stream), in batches of about ten seconds; every rule of
# every kind that counts over history, with windows of 20 s at most, so
# that most batches have minutes of history before their windows.
cat >decks.csv <<'CSV'
prefix,description,rate_per_min,connect_fee,increment,grace,effective_from,effective_to
88,International networks,0.50,,60/60,,2020-01-01,
882,International networks,0.60,0.01,1/1,,2020-01-01,
239,Sao Tome,0.30,,30/6,3,2020-01-01,
44,United Kingdom,0.01,,60/1,,2020-01-01,
CSV
cat >fraud.yaml <<YAML
cdr: { unanswered: yes, congestion: yes, endbeforehexten: no }
tenants:
  trunks: "SIP/loop-*"
  rules:
    - { tenant: tenantA, accountcode: tenantA }
    - { tenant: tenantB, accountcode: tenantB }
numbering:
  - { country_code: "44", national_prefix: "0", international_prefix: "00" }
rating:
  buy:
    - { carrier: loop, deck: $PWD/decks.csv, trunk: "SIP/loop-*" }
  sell:
    - { tenant: tenantA, deck: $PWD/decks.csv }
    - { tenant: tenantB, deck: $PWD/decks.csv }
etl:
  batch_events: 100
fraud:
  outbound_contexts: [internal]
  inbound_contexts: [did, sip-in, carrierside, carrier, calleephone, handset]
  snooze: 0s
  rules:
    - { name: intl-par, kind: concurrent_intl, per: extension, max: 1 }
    - { name: cps, kind: cps, per: trunk, max: 1, window: 5s }
    - { name: short, kind: short_calls, max_billsec: 6, count: 2, window: 5s }
    - { name: seq, kind: sequential, count: 2, window: 5s }
    - { name: cost, kind: cost_velocity, max: 0.02, window: 5s }
    - { name: wang, kind: wangiri, count: 2, window: 5s, max_ring: 30, prefix_digits: 2 }
alerts:
  snooze: 0s
  tenants:
    - { tenant: tenantA, max_concurrent: 2, max_cps: 1 }
    - { tenant: tenantB, max_concurrent: 2, max_cps: 1 }
YAML

test_expect_success 'setup: ten minutes of calls in one spool' '
	python3 "$TEST_ROOT/tests/bench/gen-stream.py" --events 29000 "$(capture_path s07_trunk_tenant)" 2>/dev/null |
		cdrflow_collector --replay - --spool sp --node pbx --fsync off -q >/dev/null &&
	test "$(ls sp/pbx/*.seg | wc -l)" -ge 1
'

test_expect_success 'every leg of max_call_duration read for each batch (cdrflow.fraud_history_choose off): the reference' '
	reset_db &&
	PGOPTIONS="-c cdrflow.fraud_history_choose=off" "$ETL" --once -c fraud.yaml --spool sp >out.all 2>err.all &&
	hits ref &&
	sed -n "s/.* batches=\([0-9]*\) .*/\1/p" out.all >batches && test "$(cat batches)" -ge 100 &&
	cut -d"|" -f2 ref.alerts | sort | uniq -c >kinds && cat kinds &&
	echo "$(wc -l <ref) hits" && test "$(wc -l <ref)" -ge 100 &&
	for k in concurrent_intl cps short_calls tenant_concurrent tenant_cps; do
		grep -q " $k\$" kinds || { echo "no $k alert: the test proves nothing"; return 1; }
	done
'

test_expect_success 'the conversations the windows reach only: the same alerts, and the choice was made' '
	reset_db &&
	n0=$(wc -l <"$PGDIR/server.log") &&
	PGOPTIONS="-c log_min_messages=debug1" "$ETL" --once -c fraud.yaml --spool sp >out.chosen 2>err.chosen &&
	hits got &&
	test_cmp ref got &&
	test_cmp ref.alerts got.alerts &&
	tail -n "+$((n0 + 1))" "$PGDIR/server.log" | grep "fraud_build_attempts: [0-9]* conversations besides" >chosen &&
	echo "$(wc -l <chosen) of $(cat batches) batches read chosen conversations" &&
	test "$(wc -l <chosen)" -ge 40 &&
	test "$(grep -vc "fraud_build_attempts: 0 conversations" chosen)" -ge 10
'

# The generated traffic of t4300 (every scenario: its windows split
# across batches), now after hours of other calls on the same days: legs
# of node bg every minute, in no direction a rule counts (so they are in
# no attempt), which put hours of history before every window.
background() {
	psql -X -q -v ON_ERROR_STOP=1 -c "select cdrflow_ensure_month(m) from generate_series(timestamptz '2026-02-01',
		'2026-05-01', interval '1 month') m" -c "insert into cdr (calldate, answer, \"end\", clid, src, dst, dcontext,
		channel, dstchannel, lastapp, lastdata, duration, billsec, disposition, accountcode, uniqueid, linkedid,
		userfield, sequence, node, tenant, direction, trunk)
		select t, t, t + interval '20 seconds', '', '7000', '100', 'bg', 'PJSIP/7000-' || n, '', 'Playback', '', 20, 20,
		       'ANSWERED', 'bg', 'bg-' || n, 'bg-' || n, '', n, 'bg', 'bg', 'internal', ''
		from generate_series(timestamptz '2026-02-25', '2026-05-05', interval '1 minute') with ordinality g(t, n)" >/dev/null
}

# Without the concurrency rules (t4300's intl-parallel and the tenants'
# max_concurrent): a call still in progress is read for them whatever the
# windows, which would hide a window that reaches too little.  cost-rate
# counts over 5 minutes here, not an hour: with a window of an hour the
# history is read whole anyway (sql/0083).
test_expect_success 'generated scenarios after hours of history: the same hits with every leg read and with the chosen ones' '
	"$GEN" sql hot new-country night parallel cps short seq wangiri allowance tenant-limits cost >gen.sql &&
	sed -e "/name: cost-rate/,/window:/s/window: 1h/window: 5m/" -e "/name: intl-parallel/,/max: 2/d" \
	    -e "s/max_concurrent: 3/max_cps: 100/" "$TEST_ROOT/tests/fraud/rules.yaml" >rules.yaml &&
	grep -A3 "name: cost-rate" rules.yaml | grep -q "window: 5m" &&
	! grep -q "concurrent" rules.yaml &&
	reset_db && "$SYNC" rules.yaml >/dev/null && background &&
	PGOPTIONS="-c cdrflow.fraud_history_choose=off" psql -X -q -v ON_ERROR_STOP=1 -f gen.sql >/dev/null &&
	hits gref &&
	reset_db && "$SYNC" rules.yaml >/dev/null && background &&
	n0=$(wc -l <"$PGDIR/server.log") &&
	PGOPTIONS="-c log_min_messages=debug1" psql -X -q -v ON_ERROR_STOP=1 -f gen.sql >/dev/null &&
	hits ggot &&
	test_cmp gref ggot &&
	test_cmp gref.alerts ggot.alerts &&
	echo "$(wc -l <gref) hits, $(wc -l <gref.alerts) alerts" && test "$(wc -l <gref)" -ge 20 &&
	tail -n "+$((n0 + 1))" "$PGDIR/server.log" | grep "fraud_build_attempts: [0-9]* conversations besides" >gchosen &&
	echo "$(wc -l <gchosen) batches read chosen conversations" &&
	test "$(grep -vc "fraud_build_attempts: 0 conversations" gchosen)" -ge 10
'

test_done
