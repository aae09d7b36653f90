#!/usr/bin/env bash
# Kamailio import benchmark, side by side in one run (the machine is shared):
#   1. cdrflow-etl --once over a Kamailio acc_cdrs table of N dialogs (a
#      PostgreSQL "kamailio" database next to the warehouse): read, convert,
#      classify and rate, COPY, store once, commit with the checkpoint
#   2. a raw COPY of the very same legs and calls (dumped from 1) into a
#      fresh warehouse
# and the ratio 1/2 in rows/s: how close the Kamailio source gets to
# PostgreSQL's own ceiling for the same rows.
#
#   BENCH_KAM_ROWS  dialogs to generate (default 100000)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$here/$BUILD ;; esac
rows=${BENCH_KAM_ROWS:-100000}
work=$(mktemp -d /tmp/cdrflow-bench-kam.XXXXXX)
chmod 755 "$work"
export CDRFLOW_PGPORT=${CDRFLOW_PGPORT:-54341}
cleanup() { "$here/scripts/pg.sh" stop "$work/pg" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
now() { date +%s.%N; }

pgenv=$("$here/scripts/pg.sh" start "$work/pg") || { echo "bench-kamailio: cannot start PostgreSQL" >&2; exit 69; }
eval "$pgenv"
"$BUILD/cdrflow-etl" migrate -q >/dev/null
createdb kamailio
createdb rawcopy
createdb plain
kq() { psql -d kamailio -qAt -v ON_ERROR_STOP=1 "$@"; }
kq -f /usr/share/kamailio/postgres/standard-create.sql >/dev/null
kq -f /usr/share/kamailio/postgres/acc-create.sql >/dev/null
kq -c "ALTER TABLE acc_cdrs ADD callid varchar(255) NOT NULL DEFAULT '', ADD src_user varchar(64) NOT NULL DEFAULT '',
	ADD src_domain varchar(128) NOT NULL DEFAULT '', ADD src_ip varchar(64) NOT NULL DEFAULT '',
	ADD dst_user varchar(64) NOT NULL DEFAULT '', ADD dst_domain varchar(128) NOT NULL DEFAULT '',
	ADD carrier varchar(64) NOT NULL DEFAULT '', ADD setup_time varchar(32) NOT NULL DEFAULT '',
	ADD answer_time varchar(32) NOT NULL DEFAULT '', ADD failure_time varchar(32) NOT NULL DEFAULT '',
	ADD sip_code varchar(3) NOT NULL DEFAULT '', ADD sip_reason varchar(128) NOT NULL DEFAULT ''"
echo "bench-kamailio: generating $rows dialogs in acc_cdrs"
# one dialog every 2 s from 2026-11-01 UTC: 70 % answered (5..600 s), 15 % busy,
# 10 % cancelled, 5 % failed; 20 tenants' callers, two carriers
kq -c "INSERT INTO acc_cdrs (start_time, end_time, duration, callid, src_user, src_domain, src_ip, dst_user, dst_domain,
	carrier, setup_time, answer_time, failure_time, sip_code, sip_reason)
	SELECT s, s + make_interval(secs => d), d, 'bench-' || i || '@10.0.0.1', '20' || lpad((i % 20)::text, 2, '0'),
	       'pbx.example.com', '10.0.' || (i % 4) || '.1', '0207' || lpad((i % 9999999)::text, 7, '0'), 'example.com',
	       CASE WHEN i % 2 = 0 THEN 'sip:10.9.0.1:5060' ELSE 'sip:10.9.0.2:5060' END,
	       extract(epoch FROM s)::text, CASE WHEN code = '200' THEN (extract(epoch FROM s) + 3)::text ELSE '' END,
	       CASE WHEN code = '200' THEN '' ELSE (extract(epoch FROM s) + 4)::text END, code,
	       CASE code WHEN '200' THEN 'OK' WHEN '486' THEN 'Busy Here' WHEN '487' THEN 'Request Terminated'
	                 ELSE 'Service Unavailable' END
	FROM (SELECT i, timestamp '2026-11-01 00:00:00' + make_interval(secs => i * 2) AS s,
	             CASE WHEN i % 20 < 14 THEN 8 + (i * 7919) % 600 ELSE 0 END AS d,
	             CASE WHEN i % 20 < 14 THEN '200' WHEN i % 20 < 17 THEN '486' WHEN i % 20 < 19 THEN '487' ELSE '503' END AS code
	      FROM generate_series(1, $rows) i) g"
cat >"$work/decks.csv" <<'CSV'
prefix,description,rate_per_min,connect_fee,increment,grace,effective_from,effective_to
44,United Kingdom,0.02,,60/1,,2020-01-01,
4420,London,0.01,,1/1,,2020-01-01,
CSV
cat >"$work/etl.yaml" <<YAML
spool: $work/no-spool
tenants:
  trunks: "SIP/10.9.*"
  rules:
    - { tenant: tenantA, accountcode: "200*" }
    - { tenant: tenantB, accountcode: "201*" }
numbering:
  - { country_code: "44", national_prefix: "0", international_prefix: "00" }
rating:
  buy:
    - { carrier: gw1, deck: $work/decks.csv, trunk: "SIP/10.9.0.1:5060-*" }
    - { carrier: gw2, deck: $work/decks.csv, trunk: "SIP/10.9.0.2:5060-*" }
  sell:
    - { tenant: tenantA, deck: $work/decks.csv }
sources:
  - name: kambench
    type: kamailio
    kamailio:
      host: $PGHOST
      port: $PGPORT
      database: kamailio
      user: $PGUSER
      time_mode: 4
      columns: { setup_time: setup_time, answer_time: answer_time, failure_time: failure_time, carrier: carrier, accountcode: src_user }
YAML

t0=$(now)
"$BUILD/cdrflow-etl" --once -c "$work/etl.yaml" >"$work/etl.out"
t1=$(now)
etl_s=$(echo "$t1 - $t0" | bc -l)
legs=$(psql -Atc "select count(*) from cdr")
calls=$(psql -Atc "select count(*) from call")
[ "$legs" = "$rows" ] || { echo "bench-kamailio: $legs legs for $rows rows" >&2; cat "$work/etl.out" >&2; exit 70; }

# the same without the analytics steps (fraud rules, rollups...): the import itself
PGDATABASE=plain "$BUILD/cdrflow-etl" migrate -q >/dev/null
psql -d plain -qc "delete from analytics_step"
t0=$(now)
PGDATABASE=plain "$BUILD/cdrflow-etl" --once -c "$work/etl.yaml" >"$work/etl-plain.out"
t1=$(now)
plain_s=$(echo "$t1 - $t0" | bc -l)

# the very same legs and calls, straight from files into a fresh warehouse
psql -qc "\\copy (select * from cdr) to '$work/cdr.copy'"
psql -qc "\\copy (select * from call) to '$work/call.copy'"
PGDATABASE=rawcopy "$BUILD/cdrflow-etl" migrate -q >/dev/null
for m in $(psql -Atc "select distinct to_char(calldate at time zone 'UTC', 'YYYY-MM') from cdr"); do
	psql -d rawcopy -qAtc "select cdrflow_ensure_month('$m-15 00:00:00+00')" >/dev/null
done
t0=$(now)
psql -d rawcopy -q -1 -v ON_ERROR_STOP=1 -c "\\copy cdr from '$work/cdr.copy'" -c "\\copy call from '$work/call.copy'"
t1=$(now)
copy_s=$(echo "$t1 - $t0" | bc -l)

awk -v r="$rows" -v l="$legs" -v k="$calls" -v et="$etl_s" -v pl="$plain_s" -v cp="$copy_s" 'BEGIN {
	printf "kamailio acc_cdrs %d rows -> cdr %d legs + call %d rows\n", r, l, k
	printf "%-52s %10s %12s\n", "", "seconds", "rows/s"
	printf "%-52s %10.2f %12.0f\n", "cdrflow-etl --once (read, classify, rate, store)", et, r / et
	printf "%-52s %10.2f %12.0f\n", "cdrflow-etl --once, no analytics steps", pl, r / pl
	printf "%-52s %10.2f %12.0f\n", "raw COPY of the same legs and calls", cp, r / cp
	printf "kamailio import / raw COPY rows/s: %.2f with analytics, %.2f without (1.00 = as fast as COPY)\n", (r / et) / (r / cp), (r / pl) / (r / cp)
}'
