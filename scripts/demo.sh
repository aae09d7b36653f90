#!/usr/bin/env bash
# The main job on the embedded default: install what is missing, build, replay
# bundled real Asterisk 20 AMI captures through cdrflow-collector into a local
# spool, verify it, print what was stored, then start a private PostgreSQL
# cluster, migrate the warehouse, load the spool with cdrflow-etl and show
# what landed (the cluster is stopped at the end).
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
build/cdrflow-etl --once --spool "$spool"
echo
echo "== CEL events per type"
psql -c "select eventtype, count(*) from cel group by 1 order by 2 desc"
echo "== analytics events kept in ami_event (top 12)"
psql -c "select event, count(*) from ami_event group by 1 order by 2 desc limit 12"
echo "== one call's CEL timeline (the first linkedid)"
psql -c "select to_char(eventtime, 'HH24:MI:SS.US') as time, eventtype, channame, appname, exten
         from cel where linkedid = (select linkedid from cel order by eventtime limit 1) order by eventtime"
echo
echo "spool: $(pwd)/$spool  (inspect with: build/cdrflow-collector --dump --spool $spool | less)"
echo "warehouse: stopped at exit; restart with: eval \"\$(scripts/pg.sh start $pgdir)\"; psql"
