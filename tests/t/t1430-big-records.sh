#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='events larger than a spool chunk (up to max_event_size) are stored whole and in order, by --replay and by the daemon'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
run() { timeout -s KILL 60 "$CDRFLOW_COLLECTOR" "$@"; }
export CDRFLOW_AMI_SECRET=s3cret

# A capture of small events and events of 300 KiB .. 1 MiB (a chunk is at
# most 256 KiB): two big ones in a row, one at the very start, one of
# exactly max_event_size; expect holds each event's sha1, in order.
test_expect_success 'setup: a capture with big events' '
	"$PYTHON" - big.raw expect <<-\EOF
	import hashlib, sys
	sizes = [1 << 20, 200, 300 << 10, 200, 200, 900 << 10, 700 << 10, 200, 256 << 10, 255 << 10, 200]
	evs = []
	for i, size in enumerate(sizes):
	    head = b"Event: Big%d\r\nTimestamp: %d.000000\r\nJunk: " % (i, 1700000000 + i)
	    evs.append(head + b"x" * (size - len(head) - 4) + b"\r\n\r\n")
	    assert len(evs[-1]) == size
	with open(sys.argv[1], "wb") as f:
	    f.write(b"Asterisk Call Manager/9.0.0\r\n" + b"".join(evs))
	with open(sys.argv[2], "w") as f:
	    f.writelines(hashlib.sha1(e).hexdigest() + "\n" for e in evs)
	EOF
	test "$(wc -l <expect)" = 11
'

for fsync in always interval off; do
	test_expect_success "--replay, fsync $fsync: every big event stored whole, in order" "
		run --replay big.raw --spool r_$fsync --node n --fsync $fsync >out 2>err && cat out err &&
		stored_sha1s r_$fsync >actual &&
		test_cmp expect actual &&
		verify_ok r_$fsync 11
	"
done

test_expect_success 'daemon: big events from the server stored whole, in order' '
	start_fake_ami --capture big.raw --secret "$CDRFLOW_AMI_SECRET" --log server.log &&
	write_config collector.yaml spool="$TRASH/d" auth=md5 &&
	start_collector collector.yaml &&
	wait_for "grep -q \"^DONE\" server.log" 60 &&
	wait_stored d 11 30 &&
	stop_collector TERM &&
	stop_fake_ami &&
	sent_sha1s server.log >sent &&
	test_cmp expect sent &&
	stored_sha1s d >actual &&
	test_cmp expect actual &&
	verify_ok d 11
'

test_done
