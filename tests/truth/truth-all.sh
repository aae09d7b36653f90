#!/usr/bin/env bash
# truth-all.sh [BUILD]: replay every shared capture (Event: Cdr stripped) through the
# collector, rebuild its rows with cdr-csv under the cdr.conf its README states, and
# compare them with Asterisk's Master.csv on every column but sequence (cdr-diff.py).
# Per-capture details land in $OUT (default /tmp/truth-out)/NAME.cmp.
B=${1:-build}; B=$(cd "$B" && pwd); H=$(cd "$(dirname "$0")" && pwd)
C=${CDRFLOW_SHARED:-$H/../../../shared}/captures
out=${OUT:-/tmp/truth-out}; rm -rf $out; mkdir -p $out
for d in $(cd $C && ls -d s0* v* a22* testsuite/*/); do
  d=${d%/}; n=$(echo $d | tr / _)
  raw=$C/$d/ami.raw; [ -f $raw ] || raw=$C/$d/ami.raw.xz
  python3 $H/strip-cdr.py $raw $out/$n.raw
  # cdr.conf from README
  conf=$(grep -o 'cdr.conf \[general\] in effect: [^.]*' $C/$d/README.md | sed 's/.*in effect: //')
  [ -z "$conf" ] && conf="unanswered=yes, congestion=yes, endbeforehexten=no"
  { echo "cdr:"; echo "$conf" | tr ',' '\n' | sed 's/^ *//' | grep = | grep -v '^batch\|^size' | sed 's/=\(.*\)/: \1/;s/^/  /'; } > $out/$n.yaml
  grep -q endbeforehexten $out/$n.yaml || echo "  endbeforehexten: no" >> $out/$n.yaml
  if [ -f $C/$d/spool.tar.xz ]; then # no Timestamp headers: a replay has no clock (refused); the live spool has
    mkdir -p $out/$n.live && tar -xJf $C/$d/spool.tar.xz -C $out/$n.live && mv $out/$n.live/spool $out/$n.spool
  else
    $B/cdrflow-collector --replay $out/$n.raw --spool $out/$n.spool --node $n >/dev/null 2>&1
  fi
  $B/cdrflow-etl cdr-csv -c $out/$n.yaml --spool $out/$n.spool > $out/$n.csv 2>$out/$n.err
  python3 $H/cdr-diff.py --label $n $C/$d/cdr.csv $out/$n.csv > $out/$n.cmp
  tail -1 $out/$n.cmp
done
