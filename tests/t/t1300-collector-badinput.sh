#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2317  # test bodies are single-quoted on purpose, eval'ed later (and call the helpers)
# shellcheck disable=SC2034  # test_description is read by test-lib.sh
test_description='collector: bad command lines, bad configs, unwritable or full spools, unreachable or refusing peers'
# shellcheck source-path=SCRIPTDIR source=../lib/test-lib.sh
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector

export CDRFLOW_AMI_SECRET=right-secret
S01=$(capture_path s01_answered) || bail_out "capture s01_answered not found"
S07=$(capture_path s07_trunk_tenant) || bail_out "capture s07_trunk_tenant not found"

# Run the collector with a hard time limit so that a program that should
# have refused to start cannot hang the test (137 = killed).
run() { timeout -s KILL 20 "$CDRFLOW_COLLECTOR" "$@"; }

# one_line FILE: exactly one non-empty line
one_line() {
	if [ "$(grep -c . "$1")" -ne 1 ]; then
		{
			echo "want exactly one line in $1, got:"
			cat "$1"
		} >&9
		return 1
	fi
}

# A small tmpfs we may mount (root, mount allowed).
mkdir -p "$TRASH/probe"
if mount -t tmpfs -o size=64k tmpfs "$TRASH/probe" 2>/dev/null; then
	umount "$TRASH/probe"
	test_set_prereq MOUNT
fi
if command -v openssl >/dev/null 2>&1 &&
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
		-addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
		-keyout "$TRASH/tls.key" -out "$TRASH/tls.crt" >/dev/null 2>&1; then
	test_set_prereq TLS
fi
# run as nobody: needs a binary and a capture that nobody can reach
if command -v setpriv >/dev/null 2>&1 && test_have_prereq ROOT &&
	chmod 755 "$TRASH" &&
	setpriv --reuid=65534 --regid=65534 --clear-groups \
		sh -c 'test -x "$1" && test -r "$2" && test -x "$3"' - "$CDRFLOW_COLLECTOR" "$S01" "$TRASH"; then
	test_set_prereq SETPRIV
fi
mkdir -p "$TRASH/probe-immutable"
if test_have_prereq ROOT && chattr +i "$TRASH/probe-immutable" 2>/dev/null; then
	chattr -i "$TRASH/probe-immutable"
	test_set_prereq CHATTR
fi

# ---------------------------------------------------------------- command line

test_expect_success '--help: usage on stdout, exit 0' '
	run --help >out 2>err &&
	grep -i "usage" out &&
	test_cmp /dev/null err
'

test_expect_success '--version: one line on stdout, exit 0' '
	run --version >out 2>err &&
	one_line out &&
	grep "cdrflow-collector" out
'

test_expect_success 'unknown option: exit 64' '
	test_exit_code 64 run --no-such-option >out 2>err &&
	test -s err
'

test_expect_success 'no mode at all: exit 64' '
	test_exit_code 64 run >out 2>err &&
	test -s err
'

# ---------------------------------------------------------------- config files

test_expect_success 'missing config file: exit 66 or 78, one line naming the file' '
	test_exit_code "66|78" run -c "$TRASH/no-such.yaml" >out 2>err &&
	one_line err &&
	grep -F "no-such.yaml" err
'

test_expect_success 'malformed YAML: exit 78, message has file:LINE:COL' '
	cat >bad.yaml <<-EOF &&
	spool: $TRASH/spool
	collector:
	  nodes:
	    - name: pbx1
	      host: [127.0.0.1
	      port: 5038
	EOF
	test_exit_code 78 run -c bad.yaml >out 2>err &&
	cat err &&
	one_line err &&
	grep -E "bad\.yaml:[0-9]+:[0-9]+" err
'

test_expect_success 'YAML tab indentation: exit 78, message has file:LINE:COL' '
	printf "spool: /tmp/x\ncollector:\n\tfsync: always\n" >tab.yaml &&
	test_exit_code 78 run -c tab.yaml >out 2>err &&
	cat err &&
	one_line err &&
	grep -E "tab\.yaml:[0-9]+:[0-9]+" err
'

test_expect_success 'unknown key: exit 78, message names the key and its line' '
	write_config unknown.yaml port=5038 &&
	sed -i "s/^  fsync: always/  fsync: always\n  fsync_sometimes: yes/" unknown.yaml &&
	line=$(grep -n fsync_sometimes unknown.yaml | cut -d: -f1) &&
	echo "the key is on line $line" &&
	test_exit_code 78 run -c unknown.yaml >out 2>err &&
	cat err &&
	one_line err &&
	grep -F fsync_sometimes err &&
	grep -E "unknown\.yaml:$line(:[0-9]+)?[^0-9]" err
'

test_expect_success 'unknown key in a node: exit 78' '
	write_config unknown2.yaml port=5038 &&
	echo "      pasword: oops" >>unknown2.yaml &&
	test_exit_code 78 run -c unknown2.yaml >out 2>err &&
	cat err &&
	grep -F pasword err
'

for bad in 'fsync: sometimes' 'segment_max_size: 12 parsecs' 'fsync_interval: -1s' 'max_event_size: 0' \
	'buffer_size: lots'; do
	test_expect_success "bad value ($bad): exit 78" "
		write_config badval.yaml port=5038 &&
		sed -i 's/^  ${bad%%:*}: .*/  $bad/' badval.yaml &&
		grep -F '$bad' badval.yaml &&
		test_exit_code 78 run -c badval.yaml >out 2>err &&
		cat err &&
		one_line err
	"
done

for bad in 'port: 70000' 'port: http' 'auth: kerberos' 'ping_interval: soon' 'tls: maybe' \
	'name: "bad name/../x"'; do
	test_expect_success "bad node value ($bad): exit 78" "
		write_config badnode.yaml port=5038 &&
		sed -i 's#^\\(    - \\|      \\)${bad%%:*}: .*#\\1$bad#' badnode.yaml &&
		grep -F -- '$bad' badnode.yaml &&
		test_exit_code 78 run -c badnode.yaml >out 2>err &&
		cat err &&
		one_line err
	"
done

test_expect_success 'no nodes: exit 78' '
	printf "spool: %s\ncollector:\n  fsync: always\n" "$TRASH/spool" >nonodes.yaml &&
	test_exit_code 78 run -c nonodes.yaml >out 2>err &&
	cat err &&
	one_line err
'

test_expect_success 'secret variable not set: exit 78 (fix the config), not 77' '
	write_config nosecret.yaml port=5038 secret_env=CDRFLOW_TEST_UNSET_SECRET &&
	test_exit_code 78 env -u CDRFLOW_TEST_UNSET_SECRET "$CDRFLOW_COLLECTOR" -c nosecret.yaml --check >out 2>err &&
	cat err &&
	one_line err
'

test_expect_success 'secret_file missing: exit 66 or 78' '
	write_config nosecretfile.yaml port=5038 secret_file="$TRASH/no-such-secret" &&
	test_exit_code "66|78" run -c nosecretfile.yaml --check >out 2>err &&
	cat err &&
	one_line err
'

test_expect_success 'the secret never appears in error messages or --dump-config' '
	write_config secret.yaml port=5038 &&
	echo "      bogus: 1" >>secret.yaml &&
	{ run -c secret.yaml >out 2>err; true; } &&
	write_config secret2.yaml port=5038 &&
	run -c secret2.yaml --dump-config >dump 2>>err &&
	cat dump err &&
	! grep -F "$CDRFLOW_AMI_SECRET" dump err
'

# ---------------------------------------------------------------- replay: inputs and outputs

test_expect_success 'replay of s01 stores exactly the capture events' '
	run --replay "$S01" --spool replay >out 2>err &&
	capture_sha1s s01_answered >expect &&
	stored_sha1s replay >actual &&
	test_cmp expect actual &&
	verify_ok replay "$(wc -l <expect)"
'

test_expect_success 'replay of a missing capture: exit 66' '
	test_exit_code 66 run --replay "$TRASH/no-such.raw" --spool replay2 >out 2>err &&
	one_line err
'

test_expect_success '--verify of a missing spool: exit 66' '
	test_exit_code 66 run --verify --spool "$TRASH/no-such-spool" >out 2>err
'

test_expect_success '--verify detects a flipped byte: corrupt>0, exit 65' '
	run --replay "$S01" --spool flip >out 2>err &&
	seg=$(ls flip/*/*.seg | head -n 1) &&
	size=$(stat -c %s "$seg") &&
	"$PYTHON" -c "
import sys
p, off = sys.argv[1], int(sys.argv[2])
with open(p, \"r+b\") as f:
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x20]))" "$seg" $((size / 2)) &&
	test_exit_code 65 run --verify --spool flip >out 2>err &&
	cat out &&
	one_line out &&
	grep -E "^records=[0-9]+ segments=[0-9]+ corrupt=[1-9][0-9]*$" out
'

test_expect_success SETPRIV 'replay into a read-only spool dir (chmod 555, non-root user): exit 73, one line' '
	mkdir -p rodir &&
	chmod 555 rodir &&
	chmod 755 "$TRASH" &&
	test_exit_code 73 setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$CDRFLOW_COLLECTOR" --replay "$S01" --spool "$TRASH/rodir" >out 2>err &&
	cat err &&
	one_line err
'

test_expect_success MOUNT 'replay into a read-only file system: exit 73 or 74, one line' '
	mkdir -p rofs &&
	mount -t tmpfs -o ro,size=1m tmpfs rofs &&
	register_mount "$TRASH/rofs" &&
	test_exit_code "73|74" run --replay "$S01" --spool rofs/spool >out 2>err &&
	cat err &&
	one_line err
'

test_expect_success CHATTR 'replay into an immutable spool dir (chattr +i, as root): exit 73 or 74, one line' '
	mkdir -p immut &&
	echo "$TRASH/immut" >>"$TRASH/.immutable" &&
	chattr +i immut &&
	test_exit_code "73|74" run --replay "$S01" --spool immut >out 2>err &&
	cat err &&
	one_line err
'

test_expect_success MOUNT 'disk full (1 MiB tmpfs, 1.3 MB capture): exit 74, what was stored verifies' '
	mkdir -p full &&
	mount -t tmpfs -o size=1m tmpfs full &&
	register_mount "$TRASH/full" &&
	test_exit_code 74 run --replay "$S07" --spool full/spool >out 2>err &&
	cat err &&
	grep -i -E "space|full|ENOSPC" err &&
	verify_ok full/spool &&
	stored_sha1s full/spool >stored &&
	capture_sha1s s07_trunk_tenant >all &&
	head -n "$(wc -l <stored)" all >expect &&
	echo "stored $(wc -l <stored) of $(wc -l <all) events before the disk filled" &&
	test_cmp expect stored
'

test_expect_success MOUNT 'disk full, small tmpfs (256 KiB) and s01: exit 74, verifies' '
	mkdir -p full2 &&
	mount -t tmpfs -o size=256k tmpfs full2 &&
	register_mount "$TRASH/full2" &&
	test_exit_code 74 run --replay "$S01" --spool full2/spool >out 2>err &&
	cat err &&
	verify_ok full2/spool &&
	stored_sha1s full2/spool >stored &&
	capture_sha1s s01_answered | head -n "$(wc -l <stored)" >expect &&
	test_cmp expect stored
'

test_expect_success 'file size limit (ulimit -f 256, SIGXFSZ ignored): exit 74, verifies' '
	( trap "" XFSZ; ulimit -f 256; exec "$CDRFLOW_COLLECTOR" --replay "$S01" --spool fsize ) >out 2>err
	rc=$? &&
	cat err &&
	echo "exit $rc" &&
	test $rc = 74 &&
	verify_ok fsize &&
	stored_sha1s fsize >stored &&
	capture_sha1s s01_answered | head -n "$(wc -l <stored)" >expect &&
	test_cmp expect stored
'

test_expect_success 'file size limit (ulimit -f 256, default SIGXFSZ): exit 74, not killed by the signal' '
	( ulimit -f 256; exec "$CDRFLOW_COLLECTOR" --replay "$S01" --spool fsize2 ) >out 2>err
	rc=$? &&
	cat err &&
	echo "exit $rc" &&
	test $rc = 74 &&
	verify_ok fsize2
'

# ---------------------------------------------------------------- --check against peers

test_expect_success '--check with nothing listening: exit 69, one line' '
	port=$(free_port) &&
	write_config closed.yaml port="$port" &&
	test_exit_code 69 run -c closed.yaml --check >out 2>err &&
	cat out err &&
	grep -F "$port" err
'

test_expect_success 'setup: fake server for --check' '
	start_fake_ami --capture "$S01" --secret right-secret --log check.log &&
	CHECK_PORT=$FAKE_PORT CHECK_PID=$FAKE_PID &&
	echo "port $FAKE_PORT"
'

test_expect_success '--check with the right secret (plain): exit 0' '
	write_config ok-plain.yaml auth=plain &&
	run -c ok-plain.yaml --check >out 2>err &&
	grep "^AUTH ok mode=plain" check.log
'

test_expect_success '--check with the right secret (md5): exit 0' '
	write_config ok-md5.yaml auth=md5 &&
	run -c ok-md5.yaml --check >out 2>err &&
	grep "^AUTH ok mode=md5" check.log
'

test_expect_success '--check with the secret in secret_file: exit 0' '
	echo right-secret >secret.txt &&
	chmod 600 secret.txt &&
	write_config ok-file.yaml auth=md5 secret_file="$TRASH/secret.txt" secret_env=CDRFLOW_TEST_UNSET_SECRET &&
	env -u CDRFLOW_AMI_SECRET "$CDRFLOW_COLLECTOR" -c ok-file.yaml --check >out 2>err
'

test_expect_success '--check with a wrong secret (plain): exit 77' '
	write_config wrong.yaml auth=plain &&
	CDRFLOW_AMI_SECRET=wrong-secret test_exit_code 77 run -c wrong.yaml --check >out 2>err &&
	cat err &&
	grep "^AUTH fail mode=plain" check.log
'

test_expect_success '--check with a wrong secret (md5): exit 77' '
	write_config wrong-md5.yaml auth=md5 &&
	CDRFLOW_AMI_SECRET=wrong-secret test_exit_code 77 run -c wrong-md5.yaml --check >out 2>err &&
	cat err &&
	grep "^AUTH fail mode=md5" check.log
'

test_expect_success '--check with a wrong user: exit 77' '
	write_config wrong-user.yaml auth=md5 username=intruder &&
	test_exit_code 77 run -c wrong-user.yaml --check >out 2>err
'

test_expect_success '--check against a peer that never answers the banner: exit 69 within connect_timeout' '
	"$PYTHON" -c "
import socket, time, sys
s = socket.socket(); s.bind((\"127.0.0.1\", 0)); s.listen(5)
open(sys.argv[1], \"w\").write(str(s.getsockname()[1]))
c, _ = s.accept(); time.sleep(30)" "$TRASH/mute.port" &
	register_pid $! &&
	wait_for "test -s \"$TRASH/mute.port\"" 10 &&
	write_config mute.yaml port="$(cat "$TRASH/mute.port")" connect_timeout=1s &&
	start=$(date +%s) &&
	test_exit_code 69 run -c mute.yaml --check >out 2>err &&
	end=$(date +%s) &&
	echo "took $((end - start)) s" &&
	test $((end - start)) -le 5
'

test_expect_success TLS '--check over TLS with the server certificate as CA: exit 0' '
	start_fake_ami --capture "$S01" --secret right-secret --tls-cert tls.crt --tls-key tls.key --log tls.log &&
	write_config tls-ok.yaml auth=md5 tls=true tls_ca_file="$TRASH/tls.crt" &&
	run -c tls-ok.yaml --check >out 2>err &&
	grep "^AUTH ok mode=md5" tls.log
'

test_expect_success TLS '--check over TLS with a missing tls_ca_file: exit 66 or 78 (retrying cannot help)' '
	write_config tls-noca.yaml auth=md5 tls=true tls_ca_file="$TRASH/no-such-ca.pem" &&
	test_exit_code "66|78" run -c tls-noca.yaml --check >out 2>err &&
	cat err
'

test_expect_success TLS 'back to the plain fake server' '
	stop_fake_ami &&
	FAKE_PORT=$CHECK_PORT FAKE_PID=$CHECK_PID
'

# ---------------------------------------------------------------- the daemon

test_expect_success 'daemon: spool cannot be created: exit 73' '
	touch notadir &&
	write_config cantcreat.yaml spool="$TRASH/notadir/spool" &&
	test_exit_code "73" run -c cantcreat.yaml >out 2>err &&
	cat err
'

test_expect_success 'daemon: a second collector on the same spool exits 75' '
	write_config lock.yaml spool="$TRASH/lockspool" &&
	start_collector lock.yaml &&
	wait_for "test -d \"$TRASH/lockspool/pbx1\"" 10 &&
	sleep 0.3 &&
	test_exit_code 75 run -c lock.yaml >out 2>err &&
	cat err &&
	stop_collector TERM &&
	test "$COLLECTOR_RC" = 0
'

test_expect_success 'daemon: replay into a spool a daemon holds: exit 75' '
	start_collector lock.yaml &&
	sleep 0.5 &&
	test_exit_code 75 run --replay "$S01" --spool "$TRASH/lockspool" --node pbx1 >out 2>err &&
	cat err &&
	stop_collector TERM &&
	test "$COLLECTOR_RC" = 0
'

test_expect_success MOUNT 'daemon: disk full, then space freed: nothing lost' '
	mkdir -p dfull &&
	mount -t tmpfs -o size=1m tmpfs dfull &&
	register_mount "$TRASH/dfull" &&
	dd if=/dev/zero of=dfull/filler bs=1k count=850 2>/dev/null &&
	start_fake_ami --capture "$S01" --secret right-secret --log dfull.log &&
	write_config dfull.yaml spool="$TRASH/dfull/spool" auth=plain &&
	start_collector dfull.yaml &&
	wait_for "grep -q -i \"no space\" \"$COLLECTOR_ERR\"" 20 &&
	wait_for "grep -q ^DONE dfull.log" 20 &&
	sleep 0.5 &&
	kill -0 "$COLLECTOR_PID" &&
	rm dfull/filler &&
	wait_stored dfull/spool "$(sent_count dfull.log)" &&
	stop_collector TERM &&
	test "$COLLECTOR_RC" = 0 &&
	sent_sha1s dfull.log >expect &&
	stored_sha1s dfull/spool >actual &&
	test_cmp expect actual &&
	verify_ok dfull/spool "$(wc -l <expect)"
'

test_expect_success MOUNT 'daemon: still disk full at SIGTERM: exit 74, what was stored verifies' '
	mkdir -p dfull2 &&
	mount -t tmpfs -o size=1m tmpfs dfull2 &&
	register_mount "$TRASH/dfull2" &&
	start_fake_ami --capture "$S07" --secret right-secret --log dfull2.log &&
	write_config dfull2.yaml spool="$TRASH/dfull2/spool" auth=plain &&
	start_collector dfull2.yaml &&
	wait_for "grep -q -i \"no space\" \"$COLLECTOR_ERR\"" 20 &&
	stop_collector TERM &&
	echo "exit $COLLECTOR_RC" &&
	test "$COLLECTOR_RC" = 74 &&
	verify_ok dfull2/spool &&
	stored_sha1s dfull2/spool >stored &&
	sent_sha1s dfull2.log | head -n "$(wc -l <stored)" >expect &&
	test_cmp expect stored
'

test_expect_success 'daemon: wrong secret does not kill the daemon; it keeps retrying' '
	start_fake_ami --capture "$S01" --secret right-secret --log retry.log &&
	write_config retry.yaml spool="$TRASH/retryspool" auth_retry=200ms &&
	CDRFLOW_AMI_SECRET=wrong-secret start_collector retry.yaml &&
	wait_for "[ \$(grep -c \"^AUTH fail\" retry.log) -ge 3 ]" 10 &&
	kill -0 "$COLLECTOR_PID" &&
	stop_collector TERM &&
	test "$COLLECTOR_RC" = 0
'

test_done
