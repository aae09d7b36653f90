#!/usr/bin/env bash
# The main job on the embedded default: install what is missing, build, replay
# a bundled real Asterisk 20 AMI capture through cdrflow-collector into a
# local spool, verify it, and print what was stored.
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
echo
echo "spool: $(pwd)/$spool  (inspect with: build/cdrflow-collector --dump --spool $spool | less)"
