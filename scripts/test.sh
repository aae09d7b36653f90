#!/usr/bin/env bash
# The one test command: install what is missing, build with gcc and clang
# (warnings are errors), then run every test under ASan+UBSan and normally.
# Output ends with the overall summary line "cdrflow: N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# The builds and the largest test (a million legs in a private PostgreSQL)
# need about 4 GB at once; a full disk would show up as dozens of
# unrelated failures, so say it first.
need_kb=$((4 * 1024 * 1024))
for d in . "${TMPDIR:-/tmp}"; do
	free_kb=$(df -Pk "$d" | awk 'NR == 2 { print $4 }')
	if [ "${free_kb:-0}" -lt $need_kb ]; then
		echo "test.sh: only $((free_kb / 1024)) MB free in $d; the tests need about 4096 MB" >&2
		exit 1
	fi
done
jobs=$(nproc 2>/dev/null || echo 2)
echo "== build (clang, -Werror)"
make -s -j"$jobs" BUILD=build-clang CC=clang all test-programs
echo "== build (gcc, -Werror)"
make -s -j"$jobs" all test-programs
echo "== tests under AddressSanitizer + UndefinedBehaviorSanitizer"
make -s -j"$jobs" BUILD=build-asan SANITIZE=address,undefined OPT=-O1 test-programs
asan_rc=0
BUILD=build-asan tests/run-tests.sh --quick > build-asan/test.log 2>&1 || asan_rc=$?
tail -n 1 build-asan/test.log
if [ $asan_rc -ne 0 ]; then
	echo "ASan run failed; its log:"
	cat build-asan/test.log
fi
echo "== tests"
rc=0
BUILD=build tests/run-tests.sh || rc=$?
[ $asan_rc -eq 0 ] || rc=1
exit $rc
