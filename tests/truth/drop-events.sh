#!/usr/bin/env bash
# drop-events.sh EVENT[,EVENT...] [BUILD]: what an input costs, simulated. Removes the
# named AMI events (and Event: Cdr) from the lab captures s01-s08, replays them,
# rebuilds the rows with cdr-csv under each capture's cdr.conf and compares them with
# Asterisk's Master.csv on every column but sequence; prints the per-capture lines,
# the total and the columns that differ (docs/asterisk-setup.md keeps the figures).
# Details in $OUT (default /tmp/drop-out)/NAME.cmp.  CEL is an event name too.
set -u
drop=${1:?usage: drop-events.sh EVENT[,EVENT...] [BUILD]}
B=${2:-build}; B=$(cd "$B" && pwd); H=$(cd "$(dirname "$0")" && pwd)
C=${CDRFLOW_SHARED:-$H/../../../shared}/captures
out=${OUT:-/tmp/drop-out}; rm -rf "$out"; mkdir -p "$out"
for d in $(cd "$C" && ls -d s0*); do
	raw=$C/$d/ami.raw; [ -f "$raw" ] || raw=$C/$d/ami.raw.xz
	python3 - "$raw" "$out/$d.raw" "$drop,Cdr" <<'PY'
import lzma, re, sys
src, dst, names = sys.argv[1], sys.argv[2], sys.argv[3].encode().split(b",")
data = (lzma.open(src) if src.endswith(".xz") else open(src, "rb")).read()
parts = re.split(rb"(?<=\r\n\r\n)", data)
open(dst, "wb").write(b"".join(p for p in parts if not any(p.startswith(b"Event: " + n + b"\r\n") for n in names)))
PY
	printf 'cdr:\n  unanswered: yes\n  congestion: yes\n  endbeforehexten: no\n' >"$out/$d.yaml"
	"$B/cdrflow-collector" --replay "$out/$d.raw" --spool "$out/$d.spool" --node "$d" >/dev/null 2>&1
	"$B/cdrflow-etl" cdr-csv -c "$out/$d.yaml" --spool "$out/$d.spool" >"$out/$d.csv" 2>"$out/$d.err"
	python3 "$H/cdr-diff.py" --label "$d" "$C/$d/cdr.csv" "$out/$d.csv" >"$out/$d.cmp"
	tail -1 "$out/$d.cmp"
done | tee "$out/lines" |
	awk -v d="$drop" '{ print; for (i = 2; i <= NF; i++) { split($i, a, "="); t[a[1]] += a[2] } }
	END { printf "total without %s: legs=%d identical=%d near=%d differs=%d missing=%d extra=%d\n", d,
	      t["legs"], t["identical"], t["near"], t["differs"], t["missing"], t["extra"] }'
cat "$out"/*.cmp | grep -o "[a-z]* ours=" | sed 's/ ours=//' | sort | uniq -c | sort -rn | head -8
