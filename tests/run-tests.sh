#!/usr/bin/env bash
# Run every test: cmocka unit tests, fuzz-corpus replay, shell end-to-end
# tests (tests/t/t*.sh).  Prints a summary line at the end:
#   cdrflow: N passed, M failed
# Options: --unit-only (no shell tests), --quick (what ASan runs: unit +
# corpus + shell tests, with the slowest chunkings reduced).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
BUILD=${BUILD:-build}
export CDRFLOW_BUILD=$root/$BUILD
export CDRFLOW_SHARED=${CDRFLOW_SHARED:-$root/../shared}
# fontconfig's process-lifetime caches are not leaks of ours (tests/lsan.supp)
export LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
unit_only=0
for a in "$@"; do
	case $a in
	--unit-only) unit_only=1 ;;
	--quick) export CDRFLOW_QUICK=1 ;;
	esac
done
passed=0 failed=0 failures=()

for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	out=$("$t" 2>&1); rc=$?
	printf '%s\n' "$out" | grep -E '^\[  (PASSED|FAILED|  ERROR) |^\[  ERROR   \]|^\[   LINE   \]' || true
	p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\./\1/p' | tail -1)
	f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed below:/\1/p' | tail -1)
	passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
	if [ $rc -ne 0 ] && [ "${f:-0}" -eq 0 ]; then failed=$((failed + 1)); failures+=("$t (exit $rc)"); fi
	[ "${f:-0}" -eq 0 ] || failures+=("$(basename "$t")")
	echo "unit: $(basename "$t"): ${p:-0} passed, ${f:-0} failed"
done

for t in "$BUILD"/tests/fuzz_*-replay; do
	[ -x "$t" ] || continue
	name=$(basename "$t" -replay)
	if "$t" "tests/fuzz/corpus/${name#fuzz_}" > /dev/null 2>&1; then
		passed=$((passed + 1)); echo "fuzz corpus: $name ok"
	else
		failed=$((failed + 1)); failures+=("$name corpus"); echo "fuzz corpus: $name FAILED"
	fi
done

if [ $unit_only -eq 0 ]; then
	for t in tests/t/t[0-9]*.sh; do
		[ -f "$t" ] || continue
		out=$(bash "$t" 2>&1); rc=$?
		line=$(printf '%s\n' "$out" | grep -E '^# passed [0-9]+ failed [0-9]+' | tail -1)
		p=$(echo "$line" | awk '{print $3}'); f=$(echo "$line" | awk '{print $5}')
		passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
		if [ $rc -ne 0 ]; then
			printf '%s\n' "$out" | grep -E '^(not ok|#  )' | head -40
			[ "${f:-0}" -gt 0 ] || failed=$((failed + 1))
			failures+=("$t")
		fi
		echo "e2e: $t: ${p:-0} passed, ${f:-0} failed"
	done
fi

if [ ${#failures[@]} -gt 0 ]; then
	echo "failing: ${failures[*]}"
fi
echo "cdrflow: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
