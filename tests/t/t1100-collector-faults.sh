#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2317  # test bodies are single-quoted on purpose, eval'ed later (and call the helpers)
# shellcheck disable=SC2034  # test_description is read by test-lib.sh
test_description='collector daemon against a faulty AMI server: every event stored exactly once, in order'
# shellcheck source-path=SCRIPTDIR source=../lib/test-lib.sh
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector

export CDRFLOW_AMI_SECRET=s3cret
CAP=$(capture_path s01_answered) || bail_out "capture s01_answered not found"

if command -v openssl >/dev/null 2>&1 &&
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
		-addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
		-keyout "$TRASH/tls.key" -out "$TRASH/tls.crt" >/dev/null 2>&1; then
	test_set_prereq TLS
fi

# scenario TAG 'fake_ami options' 'write_config key=value ...'
#
# Serve s01_answered through the fake server with the given fault, run the
# daemon until the server has sent everything (log says DONE) and the spool
# holds at least as many records as the server logged SENT, then SIGTERM it.
# Leaves TAG/server.log, TAG/spool, and TAG/rc (the daemon's exit status).
# shellcheck disable=SC2086  # word splitting of the option strings is wanted
scenario() {
	local tag=$1 sargs=$2 cargs=$3 n ok=0
	mkdir -p "$TRASH/$tag" &&
	start_fake_ami --capture "$CAP" --secret "$CDRFLOW_AMI_SECRET" --log "$TRASH/$tag/server.log" $sargs &&
	write_config "$TRASH/$tag/collector.yaml" spool="$TRASH/$tag/spool" $cargs &&
	start_collector "$TRASH/$tag/collector.yaml" || return 1
	wait_for "grep -q '^DONE' '$TRASH/$tag/server.log'" 60 || ok=1
	if [ $ok = 0 ]; then
		n=$(sent_count "$TRASH/$tag/server.log")
		wait_stored "$TRASH/$tag/spool" "$n" 30 || ok=1
		sleep 0.2 # give a buggy collector time to store something extra
	fi
	if ! stop_collector "${SCENARIO_SIGNAL:-TERM}"; then ok=1; fi
	echo "${COLLECTOR_RC:-none}" >"$TRASH/$tag/rc"
	stop_fake_ami
	if [ $ok != 0 ]; then
		echo "--- server log (without SENT lines):"
		grep -v '^SENT ' "$TRASH/$tag/server.log" | tail -n 20
		echo "--- sent $(sent_count "$TRASH/$tag/server.log"), stored $(stored_count "$TRASH/$tag/spool")"
		echo "--- collector stderr:"
		tail -n 20 "$COLLECTOR_ERR"
	fi
	return $ok
}

# The assertions every scenario must pass.
scenario_checks() {
	local tag=$1
	test_expect_success "$tag: SIG${SCENARIO_SIGNAL:-TERM} exits 0" "
		echo \"exit status: \$(cat $tag/rc)\" &&
		test \"\$(cat $tag/rc)\" = 0
	"
	test_expect_success "$tag: --verify says corrupt=0, records = events sent" "
		verify_ok $tag/spool \$(sent_count $tag/server.log)
	"
	test_expect_success "$tag: stored sha1 sequence = SENT sha1 sequence" "
		sent_sha1s $tag/server.log >$tag/expect &&
		test -s $tag/expect &&
		stored_sha1s $tag/spool >$tag/actual &&
		test_cmp $tag/expect $tag/actual
	"
}

NET='ping_interval=1s ping_timeout=1s reconnect_min=100ms reconnect_max=1s auth_retry=500ms'

# --- baseline: no fault, plain login
test_expect_success 'baseline: daemon stores the whole capture' "
	scenario baseline '' 'auth=plain $NET'
"
scenario_checks baseline
test_expect_success 'baseline: the server sent exactly the capture events' '
	capture_sha1s s01_answered >baseline/capture &&
	sent_sha1s baseline/server.log >baseline/sent &&
	test_cmp baseline/capture baseline/sent
'
test_expect_success 'baseline: --list fields (node, seq, segno, offset, recv_us, len, event name)' '
	cdrflow_collector --list --spool baseline/spool >baseline/list &&
	"$PYTHON" "$FAKE_AMI" --capture "$CAP" --list-events >baseline/events &&
	awk "NR == FNR { len[FNR] = \$2; name[FNR] = \$4; next }
	     \$1 != \"pbx1\" { print \"line \" FNR \": node \" \$1; bad = 1 }
	     \$3 !~ /^[0-9]+$/ || \$4 !~ /^[0-9]+$/ || \$5 !~ /^[0-9]+$/ { print \"line \" FNR \": not numeric: \" \$0; bad = 1 }
	     \$2 + 0 <= prev + 0 && FNR > 1 { print \"line \" FNR \": seq not increasing\"; bad = 1 }
	     { prev = \$2 }
	     \$6 != len[FNR] { print \"line \" FNR \": len \" \$6 \" want \" len[FNR]; bad = 1 }
	     \$8 != name[FNR] { print \"line \" FNR \": event \" \$8 \" want \" name[FNR]; bad = 1 }
	     END { exit bad }" baseline/events baseline/list
'
test_expect_success 'baseline: --dump = the concatenated capture events' '
	cdrflow_collector --dump --spool baseline/spool >baseline/dump &&
	"$PYTHON" -c "
import sys; sys.path.insert(0, \"$TEST_ROOT/tests\"); import fake_ami
blob, offs = fake_ami.read_capture(sys.argv[1])
sys.stdout.buffer.write(blob)" "$CAP" >baseline/dump.expect &&
	cmp baseline/dump.expect baseline/dump
'

# --- MD5 challenge login
test_expect_success 'md5: daemon logs in with MD5 and stores the capture' "
	scenario md5 '' 'auth=md5 $NET' &&
	grep '^AUTH ok mode=md5' md5/server.log &&
	! grep '^AUTH ok mode=plain' md5/server.log
"
scenario_checks md5

# --- connection cut in the middle of an event
test_expect_success 'disconnect-mid-event: daemon reconnects and resumes' "
	scenario disconnect '--fault disconnect-mid-event:after=100:conn=1' 'auth=plain $NET' &&
	grep '^FAULT disconnect-mid-event conn=1' disconnect/server.log &&
	grep '^AUTH ok .*conn=2' disconnect/server.log
"
scenario_checks disconnect
test_expect_success 'disconnect-mid-event: the cut event is stored once, whole' '
	sed -n 101p disconnect/expect >disconnect/cut &&
	grep -c -F -f disconnect/cut disconnect/actual >disconnect/n &&
	echo 1 >disconnect/n.expect &&
	test_cmp disconnect/n.expect disconnect/n
'

# --- cut on every connection: 3 reconnects in a row
test_expect_success 'disconnect-mid-event on every connection: 4 sessions' "
	scenario disconnect_all '--fault disconnect-mid-event:after=250:conn=all' 'auth=plain $NET' &&
	grep '^AUTH ok .*conn=4' disconnect_all/server.log
"
scenario_checks disconnect_all

# --- first login refused, second accepted
test_expect_success 'auth-fail: daemon retries after auth_retry and gets in' "
	scenario authfail '--fault auth-fail:conn=1' 'auth=plain $NET' &&
	grep '^AUTH fail mode=plain conn=1' authfail/server.log &&
	grep '^AUTH ok mode=plain conn=2' authfail/server.log
"
scenario_checks authfail

# --- a garbage line between two messages
test_expect_success 'garbage-line: a non-header line between messages is skipped' "
	scenario garbage_line '--fault garbage-line:after=100' 'auth=plain $NET' &&
	grep '^FAULT garbage-line' garbage_line/server.log
"
scenario_checks garbage_line

# --- a colon-less line inside an event
test_expect_success 'garbage-in-event: the damaged event is stored as sent' "
	scenario garbage_in_event '--fault garbage-in-event:after=100' 'auth=plain $NET' &&
	grep '^FAULT garbage-in-event' garbage_in_event/server.log
"
scenario_checks garbage_in_event

# --- one event larger than max_event_size (1 MiB)
test_expect_success 'oversized: a 1.5 MiB event is dropped, the stream goes on' "
	scenario oversized '--fault oversized:after=100:size=1572864' 'auth=plain max_event_size=1MiB $NET' &&
	grep '^FAULT oversized' oversized/server.log
"
scenario_checks oversized
test_expect_success 'oversized: nothing named Oversized was stored' '
	cdrflow_collector --list --spool oversized/spool >oversized/list &&
	! grep -w Oversized oversized/list
'

# --- every byte in its own TCP segment
test_expect_success 'byte-at-a-time: one byte per send()' "
	scenario bytewise '--fault byte-at-a-time' 'auth=md5 $NET' &&
	grep '^FAULT byte-at-a-time conn=1' bytewise/server.log
"
scenario_checks bytewise

# --- peer stops answering Ping (and everything else)
test_expect_success 'no-pong: daemon detects the dead peer and reconnects' "
	scenario nopong '--fault no-pong:after=100' 'auth=plain $NET' &&
	grep '^FAULT no-pong conn=1' nopong/server.log &&
	grep '^AUTH ok .*conn=2' nopong/server.log
"
scenario_checks nopong

# --- TLS with the server certificate as CA
test_expect_success TLS 'tls: daemon connects with TLS, verifying the certificate' "
	scenario tls '--tls-cert $TRASH/tls.crt --tls-key $TRASH/tls.key' \
		'auth=md5 tls=true tls_verify=true tls_ca_file=$TRASH/tls.crt $NET'
"
if test_have_prereq TLS; then scenario_checks tls; fi

# --- small segments, age rotation, fsync interval, SIGINT
test_expect_success 'rotation: 16 KiB segments, 1 s max age, fsync interval, stopped by SIGINT' "
	SCENARIO_SIGNAL=INT scenario rotation '--fault slow:rate=2000' \
		'auth=plain segment_max_size=16KiB segment_max_age=1s fsync=interval fsync_interval=50ms $NET' &&
	segs=\$(ls rotation/spool/pbx1/*.seg | wc -l) &&
	echo \"\$segs segments\" &&
	test \$segs -ge 5
"
SCENARIO_SIGNAL=INT scenario_checks rotation
test_expect_success 'rotation: segment numbers are 16 digits, consecutive from 1' '
	ls rotation/spool/pbx1/ | grep "\.seg$" >rotation/segs &&
	n=$(wc -l <rotation/segs) &&
	seq -f "%016g.seg" 1 "$n" >rotation/segs.expect &&
	test_cmp rotation/segs.expect rotation/segs
'

test_expect_success 'fsync off: stores the capture' "
	scenario fsync_off '' 'auth=plain fsync=off $NET'
"
scenario_checks fsync_off

# --- SIGTERM while the peer is gone and the daemon is backing off
test_expect_success 'SIGTERM while reconnecting to a dead peer: exit 0 within 3 s' "
	mkdir -p deadpeer &&
	start_fake_ami --capture '$CAP' --secret \"\$CDRFLOW_AMI_SECRET\" --log '$TRASH/deadpeer/server.log' &&
	write_config deadpeer/collector.yaml spool='$TRASH/deadpeer/spool' auth=plain reconnect_min=500ms reconnect_max=10s &&
	start_collector deadpeer/collector.yaml &&
	wait_for \"grep -q '^DONE' '$TRASH/deadpeer/server.log'\" 30 &&
	stop_fake_ami &&
	sleep 1.5 &&
	kill -0 \$COLLECTOR_PID &&
	start=\$(date +%s%N) &&
	stop_collector TERM &&
	end=\$(date +%s%N) &&
	echo \"exit \$COLLECTOR_RC after \$(((end - start) / 1000000)) ms\" &&
	test \$COLLECTOR_RC = 0 &&
	test \$(((end - start) / 1000000)) -lt 3000 &&
	verify_ok deadpeer/spool 896
"

# --- graceful restarts in the middle of a fast stream
# Asterisk does not replay: whatever it wrote to the socket before the
# collector's Logoff is gone if the collector does not read it.  A graceful
# stop must read up to the Goodbye (the server writes it after every event it
# has sent), so restarts with SIGTERM lose nothing.
test_expect_success 'graceful restarts mid-stream: 3 x SIGTERM + restart' "
	mkdir -p restart &&
	start_fake_ami --capture '$(capture_path s04_queue)' --repeat 100 --tag-seq --fault slow:rate=100000 \
		--secret \"\$CDRFLOW_AMI_SECRET\" --log '$TRASH/restart/server.log' &&
	write_config restart/collector.yaml spool='$TRASH/restart/spool' auth=plain $NET &&
	for i in 1 2 3; do
		start_collector restart/collector.yaml &&
		wait_for \"[ \\\$(grep -c '^AUTH ok' '$TRASH/restart/server.log') -ge \$i ]\" 10 &&
		sleep 0.2 &&
		stop_collector TERM &&
		echo \"stop \$i: exit \$COLLECTOR_RC, sent \$(sent_count restart/server.log), stored \$(stored_count restart/spool)\" &&
		test \$COLLECTOR_RC = 0 || return 1
	done &&
	! grep -q '^DONE' restart/server.log &&
	start_collector restart/collector.yaml &&
	wait_for \"grep -q '^DONE' '$TRASH/restart/server.log'\" 60 &&
	n=\$(sent_count restart/server.log) &&
	wait_stored restart/spool \$n;
	stop_collector TERM &&
	test \$COLLECTOR_RC = 0
"
test_expect_success 'graceful restarts: stored sha1 sequence = SENT sha1 sequence (nothing lost)' '
	sent_sha1s restart/server.log >restart/expect &&
	stored_sha1s restart/spool >restart/actual &&
	echo "sent $(wc -l <restart/expect), stored $(wc -l <restart/actual)" &&
	test_cmp restart/expect restart/actual
'
test_expect_success 'graceful restarts: SEQ strictly increasing across restarts, --verify clean' '
	cdrflow_collector --list --spool restart/spool >restart/list &&
	awk "FNR > 1 && \$2 + 0 <= prev + 0 { print \"line \" FNR \": seq \" \$2 \" after \" prev; bad = 1 }
	     { prev = \$2 } END { exit bad }" restart/list &&
	verify_ok restart/spool
'

# --- two nodes, two servers, one daemon
test_expect_success 'two nodes: each node stores its own server stream' "
	mkdir -p two &&
	start_fake_ami --capture '$CAP' --secret \"\$CDRFLOW_AMI_SECRET\" --log '$TRASH/two/a.log' &&
	port_a=\$FAKE_PORT pid_a=\$FAKE_PID &&
	start_fake_ami --capture '$(capture_path s02_unanswered)' --secret other-secret --username other \
		--fault disconnect-mid-event:after=300 --log '$TRASH/two/b.log' &&
	port_b=\$FAKE_PORT &&
	echo other-secret >two/secret_b &&
	write_config two/collector.yaml spool='$TRASH/two/spool' node=pbx-a port=\$port_a auth=md5 $NET &&
	cat >>two/collector.yaml <<-EOF &&
	    - name: pbx-b
	      host: 127.0.0.1
	      port: \$port_b
	      username: other
	      secret_file: $TRASH/two/secret_b
	      auth: plain
	      ping_interval: 1s
	      ping_timeout: 1s
	      reconnect_min: 100ms
	      reconnect_max: 1s
	EOF
	start_collector two/collector.yaml &&
	wait_for \"grep -q '^DONE' '$TRASH/two/a.log' && grep -q '^DONE' '$TRASH/two/b.log'\" 30 &&
	na=\$(sent_count two/a.log) nb=\$(sent_count two/b.log) &&
	wait_stored two/spool \$((na + nb)) &&
	stop_collector TERM &&
	test \$COLLECTOR_RC = 0 &&
	kill \$pid_a &&
	sent_sha1s two/a.log >two/a.expect &&
	stored_sha1s two/spool pbx-a >two/a.actual &&
	test_cmp two/a.expect two/a.actual &&
	sent_sha1s two/b.log >two/b.expect &&
	stored_sha1s two/spool pbx-b >two/b.actual &&
	test_cmp two/b.expect two/b.actual &&
	verify_ok two/spool \$((na + nb)) &&
	test -d two/spool/pbx-a && test -d two/spool/pbx-b
"

test_done
