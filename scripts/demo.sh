#!/usr/bin/env bash
# The main job on the embedded default: install what is missing, build, replay
# bundled real Asterisk 20 AMI captures through cdrflow-collector into a local
# spool, verify it, print what was stored, then start a private PostgreSQL
# cluster, migrate the warehouse, load the spool with cdrflow-etl (legs and
# calls rebuilt with Asterisk's CDR state machine, tenants, rating, QoS,
# queues, fraud alerts) and show what landed (the cluster is stopped at the end).
#
#   scripts/demo.sh [CAPTURE...]     (default: tests/data/*.ami.raw.xz)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
make -s -j"$(nproc 2>/dev/null || echo 2)" all
spool=demo/spool
rm -rf "$spool"
mkdir -p "$spool"
captures=("$@")
[ ${#captures[@]} -gt 0 ] || captures=(tests/data/*.ami.raw.xz)
for c in "${captures[@]}"; do
	node=$(basename "$c"); node=${node%%.*}; node=${node//[^A-Za-z0-9._-]/_}
	build/cdrflow-collector --replay "$c" --spool "$spool" --node "$node"
done
echo
echo "== verify"
build/cdrflow-collector --verify --spool "$spool"
echo
echo "== stored events by type (all nodes)"
build/cdrflow-collector --list --spool "$spool" | awk '{print $8}' | sort | uniq -c | sort -rn | head -20
echo
echo "== segments"
find "$spool" -name '*.seg' -printf '%p  %s bytes\n' | sort
echo
echo "== first stored record of each node"
for d in "$spool"/*/; do
	build/cdrflow-collector --list --spool "$spool" --node "$(basename "$d")" | awk 'NR == 1'
done

# ---- the warehouse: a private PostgreSQL cluster in a local directory
pgdir=$(pwd)/demo/pg
if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$(pwd)/demo" 2>/dev/null; then
	pgdir=/tmp/cdrflow-demo-pg # the cluster's non-root owner cannot reach this checkout
fi
eval "$(scripts/pg.sh start "$pgdir")"
trap 'scripts/pg.sh stop "$pgdir"' EXIT
psql -qAtc "drop schema public cascade; create schema public" >/dev/null 2>&1 || true
echo
echo "== warehouse (PostgreSQL in $pgdir)"
build/cdrflow-etl migrate
build/cdrflow-etl --once -c tests/data/demo/cdrflow.yaml --spool "$spool"
echo
echo "== legs rebuilt from the channel events vs. the Cdr events Asterisk itself sent"
psql -c "select node, (select count(*) from cdr c where c.node = a.node) as legs_rebuilt,
         count(*) as asterisk_cdr_events from ami_event a where event = 'Cdr' group by node order by node"
echo "== legs per disposition"
psql -c "select disposition, count(*), sum(billsec) as billsec from cdr group by 1 order by 2 desc"
echo "== calls (conversations) by outcome and direction"
psql -c "select outcome, direction, count(*), sum(total_billsec) as talk_seconds, sum(transfers) as transfers
         from call group by 1, 2 order by 3 desc"
echo "== billing per tenant (micro-units shown as currency)"
psql -c "select tenant, count(*) filter (where rate_status = 'rated') as rated_legs,
         count(*) filter (where rate_status like 'no_%') as unrated_legs,
         round(sum(buy_cost) / 1e6, 4) as buy, round(sum(sell_cost) / 1e6, 4) as sell,
         round(sum(margin) / 1e6, 4) as margin from cdr where carrier is not null group by 1 order by 1"
echo "== usage against allowance"
psql -c "select tenant, to_char(month, 'YYYY-MM') as month, minutes, allowance, used_pct from tenant_usage order by 1"
echo "== voice quality (RTCP, simplified E-model)"
psql -c "select direction, count(*) as legs, round(avg(mos)::numeric, 2) as avg_mos, round(min(mos)::numeric, 2) as min_mos,
         round(max(loss_pct)::numeric, 2) as max_loss_pct from qos_leg group by 1 order by 1"
echo "== queues"
psql -c "select node, queue, offered, answered, abandoned, timeouts, round(sl_pct::numeric, 1) as sl_pct,
         round(asa_s::numeric, 1) as asa_s, max_wait_s, round(aht_s::numeric, 1) as aht_s
         from cdrflow_queue_stats(now() - interval '10 years', now() + interval '1 day', interval '10000 days')"
echo "== alerts"
psql -c "select rule, severity, tenant, subject, hits, array_length(evidence, 1) as calls from alert order by id"

# ---- reports over the captured day, every template, every format
echo
echo "== reports (cdrflow-report, templates/*.yaml) in demo/reports"
rm -rf demo/reports
mkdir -p demo/reports
day=$(psql -qAtc "select to_char(min(calldate) at time zone 'UTC', 'YYYY-MM-DD') from cdr")
for t in templates/*.yaml; do
	name=$(basename "$t" .yaml)
	each=
	if [ "$name" = tenant-statement ]; then each="--each tenant"; fi # one statement per tenant
	# shellcheck disable=SC2086
	build/cdrflow-report run "$name" --templates templates --from "$day" --out demo/reports \
		--format pdf,csv,xlsx,html $each
done
echo
echo "spool: $(pwd)/$spool  (inspect with: build/cdrflow-collector --dump --spool $spool | less)"
echo "warehouse: stopped at exit; restart with: eval \"\$(scripts/pg.sh start $pgdir)\"; psql"
