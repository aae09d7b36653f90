#!/usr/bin/env bash
# truth-all.sh [BUILD]: the truth table over every shared capture.
#
# Each capture (../shared/captures: s01-s08, v1-v4, a22_pjsip_mix and
# testsuite/*) is replayed with
# its Event: Cdr messages stripped through cdrflow-collector, its rows rebuilt
# by `cdrflow-etl cdr-csv` under the cdr.conf its README states (over the
# lab's, ASTERISK_SETUP.md), and compared with Asterisk's own Master.csv on
# every column but sequence (cdr-diff.py); the Asterisk testsuite's own
# expectations are checked too (testsuite-expect.py).  Prints one line per
# capture; details in $OUT/NAME.cmp (default /tmp/truth-out).
#
# v1 has no Timestamp headers: a replay of its ami.raw has no clock (the
# collector refuses it), so its live spool (receive times) is loaded instead.
# Verdicts: every capture must pass cdr-diff.py (no differing, missing or
# extra leg; second-boundary legs at most 1.5 %, 2 % with a receive-time
# clock), legs warned as caveats by
# the ETL excepted, except the degraded ones listed in $DEGRADED (judged by
# the doctor tests): exit 1 if any fails.
set -u
B=$(cd "${1:-build}" && pwd)
H=$(cd "$(dirname "$0")" && pwd)
C=${CDRFLOW_SHARED:-$H/../../../shared}/captures
OUT=${OUT:-/tmp/truth-out}
DEGRADED=${DEGRADED:-v2_disabledevents}
rm -rf "$OUT" && mkdir -p "$OUT" || exit 2
rc=0
for d in $(cd "$C" && ls -d s0*/ v*/ a22*/ testsuite/*/ 2>/dev/null); do
	d=${d%/}
	n=$(echo "$d" | tr / _)
	raw=$C/$d/ami.raw
	[ -f "$raw" ] || raw=$C/$d/ami.raw.xz
	"$H/strip-cdr.py" "$raw" "$OUT/$n.raw" || exit 2
	# cdr.conf: the lab's, then what the README says is in effect
	{
		echo "cdr:"
		echo "  unanswered: yes"
		echo "  congestion: yes"
		echo "  endbeforehexten: no"
		grep -o 'cdr.conf \[general\] in effect: [^.]*' "$C/$d/README.md" | sed 's/.*in effect: //' |
			tr ',' '\n' | sed 's/^ *//' | grep = | grep -v '^batch\|^size' | sed 's/=\(.*\)/: \1/; s/^/  /'
	} | awk -F: '{ k[$1] = $0; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } } END { for (i = 1; i <= n; i++) print k[order[i]] }' >"$OUT/$n.yaml"
	if [ -f "$C/$d/spool.tar.xz" ]; then
		# no Timestamp headers: a replay has no clock (refused); the live spool has the receive times
		mkdir -p "$OUT/$n.live" && tar -xJf "$C/$d/spool.tar.xz" -C "$OUT/$n.live" &&
			mv "$OUT/$n.live/spool" "$OUT/$n.spool" || exit 2
	else
		"$B/cdrflow-collector" --replay "$OUT/$n.raw" --spool "$OUT/$n.spool" --node "$n" >/dev/null 2>&1 || exit 2
	fi
	"$B/cdrflow-etl" cdr-csv -c "$OUT/$n.yaml" --spool "$OUT/$n.spool" >"$OUT/$n.csv" 2>"$OUT/$n.err" || exit 2
	caveats=$(sed -n 's/.*warning: node [^:]*: \([0-9]*\) leg(s).*Originate.*/\1/p' "$OUT/$n.err" | head -1)
	# a receive-time clock (no Timestamp headers) decides seconds less often
	maxnear=1.5
	[ -f "$C/$d/spool.tar.xz" ] && maxnear=${RECV_CLOCK_MAX_NEAR_PCT:-2}
	"$H/cdr-diff.py" --label "$n" --max-near-pct "$maxnear" --caveat-legs "${caveats:-0}" "$C/$d/cdr.csv" "$OUT/$n.csv" >"$OUT/$n.cmp"
	verdict=$?
	line=$(tail -1 "$OUT/$n.cmp")
	if [ -f "$C/$d/test-config.yaml" ]; then
		"$H/testsuite-expect.py" --caveat-legs "${caveats:-0}" "$C/$d/test-config.yaml" "$C/$d/cdr.csv" "$OUT/$n.csv" >"$OUT/$n.expect" || verdict=1
		line="$line testsuite=$(grep -c ' ok$' "$OUT/$n.expect")/$(grep -c ': expected=' "$OUT/$n.expect")"
	fi
	case " $DEGRADED " in
	*" $n "*) echo "$line (degraded input: judged by doctor)" ;;
	*)
		if [ $verdict -eq 0 ]; then echo "$line ok"; else echo "$line FAIL"; rc=1; fi ;;
	esac
done
exit $rc
