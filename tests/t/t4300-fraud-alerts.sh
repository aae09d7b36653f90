#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='fraud rules and threshold alerts: YAML validation, generated traffic that must and must not trigger, s07 end to end, endpoint state'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
SYNC=$CDRFLOW_BUILD/tests/fraud-sync
GEN=$TEST_ROOT/tests/fraud/gen-traffic.py
[ -x "$ETL" ] || bail_out "no $ETL (run make)"
[ -x "$SYNC" ] || bail_out "no $SYNC (run make test-programs)"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || skip_all "PostgreSQL server binaries are not installed"
capture_path s07_trunk_tenant >/dev/null || bail_out "captures not found"
S07=$(dirname "$(capture_path s07_trunk_tenant)")

PGDIR=$(mktemp -d /tmp/cdrflow-t4300.XXXXXX)
export CDRFLOW_PGPORT=$(free_port)
trap '"$TEST_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"; test_cleanup' EXIT
eval "$("$TEST_ROOT/scripts/pg.sh" start "$PGDIR")" || bail_out "cannot start PostgreSQL"
"$ETL" migrate >/dev/null || bail_out "migrate failed"
q() { psql -X -Atc "$1"; }
reset_db() { psql -X -qc 'DROP SCHEMA public CASCADE; CREATE SCHEMA public' 2>/dev/null && "$ETL" migrate >/dev/null 2>&1; }

# The configuration of the generated traffic: the parameters
# tests/fraud/gen-traffic.py's expectations are written for (its RULES).
cp "$TEST_ROOT/tests/fraud/rules.yaml" fraud.yaml

# Bad configurations: "name|yaml|what the message must say" (| inside the YAML: none)
cat >bad.list <<'LIST'
unknown-rule-key|fraud:\n  rules:\n    - name: a\n      kind: hotlist\n      prefixes: [882]\n      colour: red\n|:6:7: unknown key "fraud.rules[0].colour"
bad-int|fraud:\n  rules:\n    - name: a\n      kind: cps\n      max: lots\n|:5:12: fraud.rules[0].max: "lots"
unknown-kind|fraud:\n  rules:\n    - name: a\n      kind: telepathy\n|:4:13: fraud.rules[0].kind: "telepathy" must be one of
missing-required|fraud:\n  rules:\n    - name: a\n      kind: concurrent_intl\n|fraud.rules[0].max is required
duplicate-name|fraud:\n  rules:\n    - name: a\n      kind: hotlist\n      prefixes: [882]\n    - name: a\n      kind: hotlist\n      prefixes: [881]\n|:6:13: fraud.rules[1].name: duplicate rule name "a"
bad-prefix|fraud:\n  rules:\n    - name: a\n      kind: hotlist\n      prefixes: ["+88x"]\n|:5:18: fraud.rules[0].prefixes: "+88x" must be an international prefix
bad-hours|fraud:\n  rules:\n    - name: a\n      kind: out_of_hours\n      hours: "8-18"\n|:5:14: fraud.rules[0].hours: "8-18" must be HH:MM-HH:MM
bad-day|fraud:\n  rules:\n    - name: a\n      kind: out_of_hours\n      days: [mon, funday]\n|:5:19: fraud.rules[0].days: "funday" must be mon..sun or 1..7
bad-duration|fraud:\n  rules:\n    - name: a\n      kind: short_calls\n      window: soon\n|:5:15: fraud.rules[0].window: "soon"
bad-severity|fraud:\n  rules:\n    - name: a\n      kind: hotlist\n      severity: apocalyptic\n      prefixes: [882]\n|:5:17: fraud.rules[0].severity: "apocalyptic" must be one of info, warning, minor, major, critical
list-not-scalar|fraud:\n  outbound_contexts: internal\n|:2:22: fraud.outbound_contexts must be a list
unknown-section-key|alerts:\n  allowances: {}\n|:2:3: unknown key "alerts.allowances"
bad-tenant-limit|alerts:\n  tenants:\n    - tenant: x\n      max_cps: -1\n|:4:16: alerts.tenants[0].max_cps: "-1"
tenant-twice|alerts:\n  tenants:\n    - tenant: x\n    - tenant: x\n|:4:15: alerts.tenants[1].tenant: tenant "x" is listed twice
context-both-ways|fraud:\n  outbound_contexts: [a]\n  inbound_contexts: [a]\n|context "a" is both inbound and outbound
LIST

# From the capture's own files: the hot-list hits s07 must give (the
# outbound legs, context internal per ASTERISK_SETUP.md, whose dialled number
# is in +882/+881/+239) as "E.164 linkedid", and the other international
# numbers dialled there, which must not give any.
cat >s07-expect.py <<'PY'
import csv, sys
hot, other = set(), set()
for row in csv.reader(open(sys.argv[1])):
    dst, ctx, linkedid = row[2], row[3], row[19]
    if ctx != "internal":
        continue
    e164 = "+" + dst[2:] if dst.startswith("00") else dst if dst.startswith("+") else None
    if not e164:
        continue
    if e164[1:].startswith(("882", "881", "239")):
        hot.add("%s %s" % (e164, linkedid))
    else:
        other.add(e164)
open("s07-hot.expect", "w").write("".join(l + "\n" for l in sorted(hot)))
open("s07-other.expect", "w").write("".join(l + "\n" for l in sorted(other)))
PY

# From ami.raw: per device the DeviceStateChange states with repeats
# collapsed ("device state" per change, in order).
cat >device-states.py <<'PY'
import lzma, sys
p = sys.argv[1]
data = (lzma.open(p) if p.endswith(".xz") else open(p, "rb")).read().decode("latin1")
last = {}
out = []
for msg in data.split("\r\n\r\n"):
    f = dict(l.split(": ", 1) for l in msg.split("\r\n") if ": " in l)
    if f.get("Event") != "DeviceStateChange":
        continue
    d, s = f["Device"], f["State"]
    if last.get(d) != s:
        out.append("%s %s" % (d, s))
        last[d] = s
print("\n".join(sorted(out)))
PY

test_expect_success 'the test configuration loads; defaults filled in; rules and limits are synced' '
	"$SYNC" --check fraud.yaml >fraud.json &&
	grep -q "\"window_ms\": 300000" fraud.json &&
	grep -q "\"prefixes\": \[\"882\", \"881\", \"239\"\]" fraud.json &&
	grep -q "\"days\": \[1, 2, 3, 4, 5\]" fraud.json &&
	"$SYNC" fraud.yaml >out &&
	grep "14 rules, 6 tenant limits" out &&
	test "$(q "select count(*) from fraud_rule")" = 14 &&
	test "$(q "select severity from fraud_rule where name = '"'"'endpoint_recovered'"'"'")" = info &&
	test "$(q "select params->>'"'"'timezone'"'"' from fraud_rule where name = '"'"'night-intl'"'"'")" = Europe/Berlin &&
	test "$(q "select max_cps from fraud_tenant_limit where tenant = '"'"'tp-y'"'"'")" = 2
'

test_expect_success 'bad fraud:/alerts: sections are rejected with file:line:col and the reason' '
	while IFS="|" read -r name yaml want; do
		printf "%b" "$yaml" >bad-$name.yaml &&
		test_exit_code 78 "$SYNC" --check bad-$name.yaml >/dev/null 2>bad-$name.err &&
		grep -F -- "$want" bad-$name.err >/dev/null || { echo "case $name:"; cat bad-$name.err; return 1; }
	done <bad.list &&
	test "$(wc -l <bad.list)" = 15
'

test_expect_success 'a sync that fails (unknown time zone) changes nothing; a good one replaces every rule' '
	sed "s|Europe/Berlin|Europe/Atlantis|" fraud.yaml >badtz.yaml &&
	test_exit_code 78 "$SYNC" badtz.yaml 2>err &&
	grep "unknown time zone \"Europe/Atlantis\"" err &&
	test "$(q "select count(*) from fraud_rule")" = 14 &&
	printf "fraud:\n  rules:\n    - name: only\n      kind: hotlist\n      prefixes: [882]\n" >one.yaml &&
	"$SYNC" one.yaml &&
	test "$(q "select string_agg(name, '"'"','"'"') from fraud_rule")" = only &&
	test "$(q "select count(*) from fraud_tenant_limit")" = 0 &&
	"$SYNC" fraud.yaml >/dev/null &&
	test "$(q "select count(*) from fraud_rule")" = 14
'

test_expect_success 'generated traffic: every batch goes through cdrflow_after_batch' '
	"$GEN" sql hot new-country night parallel cps short seq wangiri allowance tenant-limits >gen.sql &&
	psql -X -q -v ON_ERROR_STOP=1 -f gen.sql >/dev/null &&
	test "$(q "select count(*) from cdr where node = '"'"'gen'"'"'")" = "$(grep -c "^  (" gen.sql)" &&
	test "$(q "select count(*) from alert")" -gt 0
'

# one test per scenario: the alerts of its rule for its must (-y) and
# must-not (-n) tenants are exactly the expected ones
for scenario in hot new-country night parallel cps short seq wangiri allowance tenant-limits; do
	test_expect_success "rule check: $scenario (must trigger / must not)" '
		"$GEN" expect '"$scenario"' >exp.'"$scenario"' &&
		while read -r rule tenant n subjects; do
			got=$(q "select count(*) || '"'"' '"'"' || coalesce(string_agg(subject, '"'"','"'"' order by subject), '"'"'-'"'"')
				 from alert where rule = '"'"'$rule'"'"' and tenant = '"'"'$tenant'"'"'") &&
			want="$n $(echo "$subjects" | tr , "\n" | LC_ALL=C sort | paste -sd, -)" &&
			got="$(echo "$got" | cut -d" " -f1) $(echo "$got" | cut -d" " -f2- | tr , "\n" | LC_ALL=C sort | paste -sd, -)" &&
			say "$rule $tenant: want $want, got $got" &&
			test "$want" = "$got" || return 1
		done <exp.'"$scenario"' &&
		grep -q " [1-9][0-9]* " exp.'"$scenario"' && test "$(wc -l <exp.'"$scenario"')" -ge 2
	'
done

test_expect_success 'windows split across batches carry every call of the window as evidence' '
	test "$(q "select cardinality(evidence) from alert where rule = '"'"'intl-parallel'"'"' and tenant = '"'"'cc-y'"'"'")" = 3 &&
	test "$(q "select cardinality(evidence) from alert where rule = '"'"'trunk-cps'"'"' and tenant = '"'"'cps-y'"'"'")" = 4 &&
	test "$(q "select cardinality(evidence) from alert where rule = '"'"'short-burst'"'"' and tenant = '"'"'sc-y'"'"'")" = 5 &&
	test "$(q "select cardinality(evidence) from alert where rule = '"'"'seq-dial'"'"' and tenant = '"'"'sq-y'"'"'")" = 5 &&
	test "$(q "select cardinality(evidence) from alert where rule = '"'"'wangiri'"'"' and tenant = '"'"'wg-y'"'"'")" = 6 &&
	test "$(q "select details->>'"'"'value'"'"' from alert where rule = '"'"'intl-parallel'"'"' and tenant = '"'"'cc-y'"'"'")" = 3 &&
	test "$(q "select details->>'"'"'run'"'"' from alert where rule = '"'"'seq-dial'"'"' and tenant = '"'"'sq-y'"'"'")" = 5
'

test_expect_success 'snooze: a repeat within the snooze folds into the alert, a later one is a new alert' '
	q "select hits, cardinality(evidence) from alert where rule = '"'"'hot'"'"' and tenant = '"'"'hot-s'"'"' order by id" >snooze.out &&
	printf "2|2\n1|1\n" >snooze.want &&
	test_cmp snooze.want snooze.out &&
	test "$(q "select count(*) from alert where rule = '"'"'allowance'"'"' and tenant = '"'"'al-y'"'"' and details->>'"'"'used_minutes'"'"' is null")" = 0 &&
	test "$(q "select billsec from fraud_usage where tenant = '"'"'al-y'"'"'")" = $((300 + 210 + 120 + 60))
'

test_expect_success 'cost velocity: silent without cdr.sell_cost (every batch above ran it), fires with the column' '
	"$GEN" sql cost >cost.sql &&
	if test "$(q "select count(*) from information_schema.columns where table_name = '"'"'cdr'"'"' and column_name = '"'"'sell_cost'"'"'")" = 0; then
		psql -X -qc "ALTER TABLE cdr ADD COLUMN sell_cost bigint" || return 1
	fi &&
	psql -X -q -v ON_ERROR_STOP=1 -f cost.sql >/dev/null &&
	"$GEN" expect cost >exp.cost &&
	test "$(q "select count(*) from alert where rule = '"'"'cost-rate'"'"' and tenant = '"'"'cv-y'"'"'")" = 1 &&
	test "$(q "select count(*) from alert where rule = '"'"'cost-rate'"'"' and tenant = '"'"'cv-n'"'"'")" = 0 &&
	q "select details->>'"'"'value'"'"' from alert where rule = '"'"'cost-rate'"'"'" &&
	test "$(q "select (details->>'"'"'value'"'"')::numeric = 55 from alert where rule = '"'"'cost-rate'"'"'")" = t &&
	grep -q "^cost-rate cv-y 1 " exp.cost
'

test_expect_success 'alerts stay pending until delivery marks them' '
	test "$(q "select count(*) from alert where delivered_at is null")" = "$(q "select count(*) from alert")" &&
	q "update alert set delivered_at = now(), delivery_attempts = 1" >/dev/null &&
	"$GEN" sql hot | sed "s/2026-03-02/2026-04-06/g" | psql -X -q -v ON_ERROR_STOP=1 >/dev/null &&
	test "$(q "select count(*) from alert where delivered_at is null and rule = '"'"'hot'"'"'")" = 4
'

test_expect_success 's07 end to end: the hot list fires for the premium numbers dialled, never for the others' '
	reset_db &&
	"$SYNC" fraud.yaml >/dev/null &&
	"$PYTHON" s07-expect.py "$S07/cdr.csv" &&
	test -s s07-hot.expect && test -s s07-other.expect &&
	cdrflow_collector --replay "$(capture_path s07_trunk_tenant)" --spool spool --node s07 >/dev/null &&
	"$ETL" --once -c fraud.yaml --spool spool >out &&
	q "select subject || '"'"' '"'"' || e from alert, unnest(evidence) e where rule = '"'"'hot'"'"' order by 1" >s07-hot.got &&
	test_cmp s07-hot.expect s07-hot.got &&
	q "select subject from alert where rule = '"'"'hot'"'"'" | sort -u >hot.subjects &&
	! grep -x -F -f s07-other.expect hot.subjects &&
	test "$(q "select string_agg(distinct severity, '"'"','"'"') from alert where rule = '"'"'hot'"'"'")" = critical
'

test_expect_success 's07 endpoint state: history holds each DeviceStateChange change, current the last state' '
	"$PYTHON" device-states.py "$(capture_path s07_trunk_tenant)" >dev.expect &&
	test "$(wc -l <dev.expect)" -gt 10 &&
	q "select endpoint || '"'"' '"'"' || state from endpoint_state_history where node = '"'"'s07'"'"' and kind = '"'"'device'"'"' order by 1" >dev.got &&
	LC_ALL=C sort dev.expect >dev.expect.sorted && LC_ALL=C sort dev.got >dev.got.sorted &&
	test_cmp dev.expect.sorted dev.got.sorted &&
	q "select count(*) from endpoint_state_current where node = '"'"'s07'"'"'" >n.got &&
	cut -d" " -f1 dev.expect | sort -u | wc -l >n.want &&
	test_cmp n.want n.got &&
	test "$(q "select count(*) from alert where rule like '"'"'endpoint%'"'"'")" = 0
'

test_expect_success 's07 in batches of 100 events: the same hot-list alerts (windows across batches)' '
	reset_db &&
	"$SYNC" fraud.yaml >/dev/null &&
	{ printf "etl:\n  batch_events: 100\n"; cat fraud.yaml; } >small.yaml &&
	"$ETL" --once -c small.yaml --spool spool >out &&
	grep -E "batches=([2-9][0-9]|[1-9][0-9][0-9])" out &&
	q "select subject || '"'"' '"'"' || e from alert, unnest(evidence) e where rule = '"'"'hot'"'"' order by 1" >s07-hot.small &&
	test_cmp s07-hot.expect s07-hot.small
'

test_expect_success 'peer/contact/registry/device events: changes kept, unreachable and recovered alerts' '
	"$GEN" ami-states >states.raw &&
	cdrflow_collector --replay states.raw --spool sspool --node pbx1 >/dev/null &&
	"$ETL" --once -c fraud.yaml --spool sspool >/dev/null &&
	q "select rule || '"'"' '"'"' || subject from alert where rule like '"'"'endpoint%'"'"' order by id" >ep.got &&
	printf "%s\n" "endpoint_unreachable SIP/trunk1" "endpoint_recovered SIP/trunk1" \
		"endpoint_unreachable PJSIP/alice sip:alice@192.0.2.20:5060" \
		"endpoint_recovered PJSIP/alice sip:alice@192.0.2.20:5060" \
		"endpoint_unreachable SIP/acme@sip.example.com" "endpoint_unreachable PJSIP/bob" >ep.want &&
	test_cmp ep.want ep.got &&
	test "$(q "select count(*) from endpoint_state_history where node = '"'"'pbx1'"'"'")" = 15 &&
	q "select kind || '"'"' '"'"' || endpoint || '"'"' '"'"' || state || '"'"' '"'"' || reachable from endpoint_state_current where node = '"'"'pbx1'"'"' order by 1" >cur.got &&
	printf "%s\n" "contact PJSIP/alice Reachable true" "device PJSIP/bob UNAVAILABLE false" \
		"peer SIP/trunk1 Reachable true" "peer SIP/trunk2 Reachable true" \
		"registry SIP/acme@sip.example.com Rejected false" >cur.want &&
	test_cmp cur.want cur.got &&
	test "$(q "select details->>'"'"'down_since'"'"' from alert where rule = '"'"'endpoint_recovered'"'"' and subject = '"'"'SIP/trunk1'"'"'")" = \
	     "$(q "select eventtime from endpoint_state_history where endpoint = '"'"'SIP/trunk1'"'"' and state = '"'"'Unreachable'"'"'" | sed "s/ /T/; s/+00$/+00:00/")"
'

test_expect_success 'state events split over two ETL runs: a repeat is not a change, recovery is seen' '
	printf "Asterisk Call Manager/9.0.0\r\nEvent: PeerStatus\r\nPrivilege: system,all\r\nTimestamp: 1772449200.000000\r\nChannelType: SIP\r\nPeer: SIP/trunk1\r\nPeerStatus: Reachable\r\n\r\n" >more.raw &&
	cdrflow_collector --replay more.raw --spool sspool --node pbx1 >/dev/null &&
	"$ETL" --once -c fraud.yaml --spool sspool >/dev/null &&
	test "$(q "select count(*) from endpoint_state_history where endpoint = '"'"'SIP/trunk1'"'"'")" = 3 &&
	printf "Asterisk Call Manager/9.0.0\r\nEvent: Registry\r\nPrivilege: system,all\r\nTimestamp: 1772449300.000000\r\nChannelType: SIP\r\nUsername: acme\r\nDomain: sip.example.com\r\nStatus: Registered\r\n\r\n" >more2.raw &&
	cdrflow_collector --replay more2.raw --spool sspool --node pbx1 >/dev/null &&
	"$ETL" --once -c fraud.yaml --spool sspool >/dev/null &&
	test "$(q "select count(*) from alert where rule = '"'"'endpoint_recovered'"'"' and subject = '"'"'SIP/acme@sip.example.com'"'"'")" = 1 &&
	test "$(q "select state from endpoint_state_current where endpoint = '"'"'SIP/acme@sip.example.com'"'"'")" = Registered
'

test_done
