#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2317  # test bodies are single-quoted on purpose, eval'ed later (and call the helpers)
# shellcheck disable=SC2034  # test_description is read by test-lib.sh
test_description='collector killed with SIGKILL mid-stream and restarted, again and again'
# shellcheck source-path=SCRIPTDIR source=../lib/test-lib.sh
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector

# A kill -9 of the client loses whatever was in flight (socket buffers, the
# collector's ring buffer); the fake server cannot know and goes on from its
# cursor.  So the checks are: nothing stored twice, nothing out of order,
# nothing stored ever disappears, every record verifies, and the last
# session (not killed) loses nothing.
#
# The server tags each event with "FakeSeq: <global index>" (--tag-seq) so
# that the 20 repetitions of the capture are distinct events.

export CDRFLOW_AMI_SECRET=crash-secret
ROUNDS=${CRASH_ROUNDS:-10}
REPEAT=${CRASH_REPEAT:-30}
RATE=${CRASH_RATE:-5000}
CAP=$(capture_path s04_queue) || bail_out "capture s04_queue not found"
SRVLOG=$TRASH/server.log

nauth() { grep -c '^AUTH ok' "$SRVLOG"; }

test_expect_success "setup: fake server streaming s04_queue x$REPEAT at $RATE events/s" "
	start_fake_ami --capture '$CAP' --repeat $REPEAT --tag-seq --fault slow:rate=$RATE \
		--secret \"\$CDRFLOW_AMI_SECRET\" --log '$SRVLOG' &&
	write_config collector.yaml spool='$TRASH/spool' fsync=always auth=md5 \
		ping_interval=1s ping_timeout=1s reconnect_min=100ms reconnect_max=500ms
"

crash_loop() {
	local i n ms rc=0
	for i in $(seq 1 "$ROUNDS"); do
		n=$(nauth)
		start_collector collector.yaml
		if ! wait_for "[ \$(nauth) -gt $n ]" 15; then
			echo "round $i: the restarted daemon did not log in; its stderr:"
			cat "$COLLECTOR_ERR"
			rc=1
			break
		fi
		# after a restart (recovery done: it logged in), while it writes
		cdrflow_collector --verify --spool spool >"verify.restart.$i" 2>"verify.restart.$i.err"
		echo $? >>"verify.restart.$i"
		cdrflow_collector --list --spool spool >"snap.restart.$i"
		ms=$((100 + RANDOM % 401))
		sleep "$(printf '0.%03d' "$ms")"
		kill -KILL "$COLLECTOR_PID"
		wait "$COLLECTOR_PID" 2>/dev/null
		COLLECTOR_PID=
		cdrflow_collector --list --spool spool >"snap.kill.$i"
		cdrflow_collector --verify --spool spool >"verify.kill.$i" 2>&1
		echo "round $i: killed after ${ms} ms: $(wc -l <"snap.kill.$i") records," \
			"$(sent_count "$SRVLOG") sent; verify after kill: $(head -n 1 "verify.kill.$i")"
	done
	return "$rc"
}

test_expect_success "$ROUNDS rounds of start, random 0.1-0.5 s, kill -9" '
	crash_loop
'

test_expect_success 'the first kill happened mid-stream' '
	first_kill=$(wc -l <snap.kill.1) &&
	echo "records after the first kill: $first_kill" &&
	test "$first_kill" -gt 0 &&
	test "$first_kill" -lt $((REPEAT * 2249))
'

test_expect_success 'final run: the daemon gets the rest of the stream and exits 0 on SIGTERM' '
	start_collector collector.yaml &&
	wait_for "grep -q ^DONE \"$SRVLOG\"" 120 &&
	prev=-1 stable=0 &&
	while [ $stable -lt 3 ]; do
		sleep 0.5
		cur=$(stored_count spool)
		if [ "$cur" = "$prev" ]; then stable=$((stable + 1)); else stable=0; fi
		prev=$cur
	done &&
	stop_collector TERM &&
	echo "exit status $COLLECTOR_RC" &&
	test "$COLLECTOR_RC" = 0 &&
	cdrflow_collector --list --spool spool >final.list &&
	awk "{print \$7}" final.list >final.sha1 &&
	sent_sha1s "$SRVLOG" >sent.sha1 &&
	echo "stored $(wc -l <final.sha1) of $(wc -l <sent.sha1) sent"
'

test_expect_success 'after every restart: --verify says corrupt=0, exit 0' '
	bad=0 &&
	for f in verify.restart.*[0-9]; do
		out=$(head -n 1 "$f") rc=$(tail -n 1 "$f")
		case "$out/$rc" in
		"records="*" corrupt=0/0") ;;
		*) echo "$f: $out (exit $rc)"; cat "$f.err"; bad=1 ;;
		esac
	done &&
	test $bad = 0
'

test_expect_success 'final --verify says corrupt=0' '
	verify_ok spool "$(wc -l <final.list)"
'

test_expect_success 'no event stored twice' '
	sort final.sha1 | uniq -d >dups &&
	test_cmp /dev/null dups
'

test_expect_success 'every stored event was sent, in the order sent' '
	awk "NR == FNR { idx[\$4] = \$2; next }
	     !(\$1 in idx) { print \"line \" FNR \": never sent: \" \$1; bad = 1; next }
	     FNR > 1 && idx[\$1] + 0 <= prev + 0 { print \"line \" FNR \": index \" idx[\$1] \" after \" prev; bad = 1 }
	     { prev = idx[\$1] }
	     END { exit bad }" "$SRVLOG" final.sha1
'

test_expect_success 'SEQ strictly increasing' '
	awk "FNR > 1 && \$2 + 0 <= prev + 0 { print \"line \" FNR \": seq \" \$2 \" after \" prev; bad = 1 }
	     { prev = \$2 } END { exit bad }" final.list
'

test_expect_success 'nothing stored before a kill or seen after a restart ever disappears' '
	bad=0 &&
	for s in snap.kill.* snap.restart.*; do
		n=$(wc -l <"$s")
		if ! head -n "$n" final.list | cmp -s - "$s"; then
			echo "$s ($n records) is not a prefix of the final list:"
			head -n "$n" final.list | diff - "$s" | head -n 10
			bad=1
		fi
	done &&
	test $bad = 0
'

test_expect_success 'the last session (not killed) lost nothing' '
	# the SENT lines logged after the last connection logged in, and after
	# every other connection had logged its CLOSE, belong to the last one
	awk "/^AUTH ok/ { for (i = 1; i <= NF; i++) if (\$i ~ /^conn=/) last = substr(\$i, 6) }
	     { line[NR] = \$0 }
	     END {
		for (i = 1; i <= NR; i++) {
			split(line[i], f, \" \")
			if (f[1] == \"AUTH\" && line[i] ~ (\"conn=\" last \"$\")) from = i
			if (from && f[1] == \"CLOSE\" && f[2] != last) from = i
		}
		for (i = from + 1; i <= NR; i++)
			if (line[i] ~ /^SENT /) { split(line[i], f, \" \"); print f[4] }
	     }" "$SRVLOG" >last.sha1 &&
	echo "last session: $(wc -l <last.sha1) events sent" &&
	{ test -s last.sha1 || { echo "the stream ended before the final session: raise CRASH_REPEAT"; false; }; } &&
	{ grep -v -x -F -f final.sha1 last.sha1 >missing || :; } &&
	test_cmp /dev/null missing
'

test_done
