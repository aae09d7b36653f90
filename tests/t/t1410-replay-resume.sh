#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='--replay on a full disk: exact lost counts; the same replay again resumes and stores each event once'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
run() { timeout -s KILL 60 "$CDRFLOW_COLLECTOR" "$@"; }
S07=$(capture_path s07_trunk_tenant) || bail_out "capture s07_trunk_tenant not found"

mkdir -p "$TRASH/probe"
if mount -t tmpfs -o size=64k tmpfs "$TRASH/probe" 2>/dev/null; then
	umount "$TRASH/probe"
	test_set_prereq MOUNT
fi
test_have_prereq MOUNT || skip_all "needs a tmpfs mount (root)"

test_expect_success 'setup: the capture'"'"'s events' '
	capture_sha1s s07_trunk_tenant >all && test "$(wc -l <all)" -gt 1000
'

test_expect_success 'disk full: exit 74; the counts in the message match what the spool holds' '
	mkdir -p full && mount -t tmpfs -o size=1m tmpfs full && register_mount "$TRASH/full" &&
	test_exit_code 74 run --replay "$S07" --spool full/spool --node n >out 2>err && cat err &&
	stored=$(stored_sha1s full/spool | wc -l) && echo "stored $stored of $(wc -l <all)" &&
	test "$stored" -gt 0 && test "$stored" -lt "$(wc -l <all)" &&
	line=$(grep "this run accepted" err) &&
	set -- $(echo "$line" | sed -n "s/.*this run accepted \([0-9]*\) events of .*: \([0-9]*\) stored (sequence 1\.\.\([0-9]*\)), \([0-9]*\) not stored; 0 stored by earlier runs.*/\1 \2 \3 \4/p") &&
	echo "accepted $1, stored $2 (..$3), not stored $4" &&
	test "$2" = "$stored" && test "$3" = "$stored" && test $(($1 - $2)) = "$4" &&
	verify_ok full/spool
'

test_expect_success 'the same replay again, still full: stores nothing twice, says so' '
	before=$(stored_sha1s full/spool | wc -l) &&
	test_exit_code 74 run --replay "$S07" --spool full/spool --node n >out 2>err && cat err &&
	grep -q "No space left on device" err &&
	stored_sha1s full/spool >stored &&
	head -n "$(wc -l <stored)" all >expect && test_cmp expect stored &&
	test "$(wc -l <stored)" = "$before"
'

test_expect_success 'space freed: the same replay resumes, every event stored exactly once, in order' '
	mount -o remount,size=8m full &&
	run --replay "$S07" --spool full/spool --node n >out 2>err && cat out &&
	grep -q "^resumed: [0-9]* events of .* were stored by an earlier run" out &&
	stored_sha1s full/spool >stored && test_cmp all stored &&
	verify_ok full/spool "$(wc -l <all)"
'

test_expect_success 'and once more: a finished replay stores nothing again (exit 0)' '
	run --replay "$S07" --spool full/spool --node n >out 2>err && cat out &&
	grep -q "^replayed 0 events from .*: all $(wc -l <all) were stored before" out &&
	stored_sha1s full/spool >stored && test_cmp all stored
'

test_expect_success 'another capture into the same node is stored (the state is per capture)' '
	run --replay "$(capture_path s01_answered)" --spool full/spool --node n >out &&
	test "$(stored_sha1s full/spool | wc -l)" = $(( $(wc -l <all) + $(capture_sha1s s01_answered | wc -l) )) &&
	verify_ok full/spool
'

test_done
