# test-lib.sh - a minimal git-style harness for cdrflow's end-to-end shell tests.
#
# A test file looks like
#
#	#!/usr/bin/env bash
#	test_description='what this file checks'
#	. "$(dirname "$0")/../lib/test-lib.sh"
#	test_expect_success 'it works' '
#		cdrflow_collector --help >out &&
#		grep usage out
#	'
#	test_done
#
# Each test body is eval'ed in the test file's shell (so background processes
# stay children of it and variables carry over), inside the file's own temp
# directory $TRASH.  A body fails if its last command fails: chain with &&.
# test_expect_success takes an optional first argument, a comma-separated
# list of prerequisites (test_set_prereq NAME); a test whose prerequisite is
# missing is reported as skipped.
#
# Output is TAP-like: "ok N - desc", "not ok N - desc" followed by the body
# and the tail of its output prefixed with "#  ", and at the end
# "# passed N failed M" (the line tests/run-tests.sh reads).  The exit status
# is non-zero if a test failed.
#
# Options (or environment): -v/--verbose (TEST_VERBOSE=1) shows each body's
# output live; -d/--debug (TEST_DEBUG=1) keeps $TRASH; -x traces bodies.
#
# Environment: CDRFLOW_BUILD (default <repo>/build), CDRFLOW_COLLECTOR (the
# binary, default $CDRFLOW_BUILD/cdrflow-collector), CDRFLOW_SHARED (default
# <repo>/../shared), PYTHON (default python3).

TEST_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TEST_NAME=$(basename "$0" .sh)
CDRFLOW_BUILD=${CDRFLOW_BUILD:-$TEST_ROOT/build}
CDRFLOW_COLLECTOR=${CDRFLOW_COLLECTOR:-$CDRFLOW_BUILD/cdrflow-collector}
CDRFLOW_SHARED=${CDRFLOW_SHARED:-$TEST_ROOT/../shared}
PYTHON=${PYTHON:-python3}
FAKE_AMI=$TEST_ROOT/tests/fake_ami.py
export CDRFLOW_BUILD CDRFLOW_SHARED
# fontconfig's process-lifetime caches are not leaks of ours (tests/lsan.supp)
case ${LSAN_OPTIONS:-} in *lsan.supp*) ;; *) export LSAN_OPTIONS="suppressions=$TEST_ROOT/tests/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}" ;; esac

TEST_VERBOSE=${TEST_VERBOSE:-0}
TEST_DEBUG=${TEST_DEBUG:-0}
TEST_TRACE=${TEST_TRACE:-0}
for _arg in "$@"; do
	case $_arg in
	-v|--verbose) TEST_VERBOSE=1 ;;
	-d|--debug) TEST_DEBUG=1 ;;
	-x) TEST_TRACE=1 ;;
	*) echo "$0: unknown option $_arg" >&2; exit 64 ;;
	esac
done

test_count=0
test_passed=0
test_failed=0
test_skipped=0
test_failures=
_prereqs=" "

# A script killed with -9 (or by the end of a session) cannot clean up:
# remove the leftovers of scripts whose owner process is gone, so that
# interrupted runs do not fill the disk (each directory names its owner).
sweep_stale_trash() {
	local d owner
	for d in "${TMPDIR:-/tmp}"/cdrflow-t[0-9]*.* /tmp/cdrflow-t[0-9]*-pg.*; do
		[ -d "$d" ] && [ -f "$d/.owner" ] || continue
		owner=$(cat "$d/.owner" 2>/dev/null) || continue
		case $owner in '' | *[!0-9]*) continue ;; esac
		kill -0 "$owner" 2>/dev/null && continue
		# a private PostgreSQL of a dead script may still run
		[ -f "$d/data/postmaster.pid" ] &&
			kill -KILL "$(head -n 1 "$d/data/postmaster.pid")" 2>/dev/null
		chattr -R -i "$d" 2>/dev/null
		rm -rf "$d"
	done
}
sweep_stale_trash

TRASH=$(mktemp -d "${TMPDIR:-/tmp}/cdrflow-$TEST_NAME.XXXXXX") || {
	echo "Bail out! cannot create a temp directory" >&2
	exit 1
}
echo $$ >"$TRASH/.owner"
: >"$TRASH/.pids"
: >"$TRASH/.mounts"
: >"$TRASH/.immutable"

# test_at_exit 'CMD': run CMD when the script exits (its own servers:
# pg.sh stop...), last registered first, before test_cleanup's work.  A
# script's own "trap ... EXIT" would replace test_cleanup: its background
# processes would outlive it and its $TRASH would stay behind.
TEST_AT_EXIT=()
test_at_exit() { TEST_AT_EXIT+=("$1"); }

# Kill every background process we started, undo mounts, remove $TRASH.
test_cleanup() {
	local p m _ alive i
	for ((i = ${#TEST_AT_EXIT[@]} - 1; i >= 0; i--)); do
		eval "${TEST_AT_EXIT[i]}"
	done
	while read -r p; do
		[ -n "$p" ] && kill -TERM "$p" 2>/dev/null
	done <"$TRASH/.pids"
	for _ in $(seq 30); do
		alive=0
		while read -r p; do
			[ -n "$p" ] && kill -0 "$p" 2>/dev/null && alive=1
		done <"$TRASH/.pids"
		[ $alive = 0 ] && break
		sleep 0.1
	done
	while read -r p; do
		[ -n "$p" ] || continue
		kill -KILL "$p" 2>/dev/null
		{ wait "$p"; } 2>/dev/null
	done <"$TRASH/.pids"
	while read -r m; do
		[ -n "$m" ] && chattr -i "$m" 2>/dev/null
	done <"$TRASH/.immutable"
	# unmount in reverse order
	tac "$TRASH/.mounts" 2>/dev/null | while read -r m; do
		[ -n "$m" ] && umount "$m" 2>/dev/null
	done
	cd / || true
	if [ "$TEST_DEBUG" = 1 ]; then
		echo "# kept $TRASH"
	else
		rm -rf "$TRASH"
	fi
}
trap 'test_cleanup' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cd "$TRASH" || exit 1
say() { printf '%s\n' "$*"; }
say "# $TEST_NAME: ${test_description:-}"

# Diagnostics of the helpers go to fd 9: the test's output even when the
# helper's own stdout/stderr are redirected (test_exit_code 1 cmd >out 2>err).
exec 9>&2

test_set_prereq() { _prereqs="$_prereqs$1 "; }
test_have_prereq() {
	local p
	for p in ${1//,/ }; do
		case $_prereqs in *" $p "*) ;; *) return 1 ;; esac
	done
	return 0
}

# The body runs inside this function, so a "return 1" in it ends the body
# (as in git's test_eval_inner_), not test_expect_success.
test_run_body_() {
	eval "$1"
}

# Run one test: test_expect_success [PREREQ] 'description' 'body'
test_expect_success() {
	local prereq='' desc body rc out
	if [ $# -eq 3 ]; then prereq=$1; shift; fi
	desc=$1 body=$2
	test_count=$((test_count + 1))
	if [ -n "$prereq" ] && ! test_have_prereq "$prereq"; then
		test_skipped=$((test_skipped + 1))
		say "ok $test_count # skip $desc (missing $prereq)"
		return 0
	fi
	out=$TRASH/.out.$test_count
	cd "$TRASH" || exit 1
	if [ "$TEST_VERBOSE" = 1 ]; then
		say "# run $test_count: $desc"
		if [ "$TEST_TRACE" = 1 ]; then set -x; fi
		test_run_body_ "$body" > >(tee "$out") 2>&1 9>&1 </dev/null
		rc=$?
		{ set +x; } 2>/dev/null
	else
		# eval in this shell, output to a file (a subshell would lose
		# background pids and exported variables)
		if [ "$TEST_TRACE" = 1 ]; then set -x; fi
		test_run_body_ "$body" >"$out" 2>&1 9>&1 </dev/null
		rc=$?
		{ set +x; } 2>/dev/null
	fi
	cd "$TRASH" || exit 1
	if [ "$rc" -eq 0 ]; then
		test_passed=$((test_passed + 1))
		say "ok $test_count - $desc"
	else
		test_failed=$((test_failed + 1))
		test_failures="$test_failures $test_count"
		say "not ok $test_count - $desc"
		say "$body" | sed 's/^/#  | /'
		if [ -s "$out" ]; then
			say "#  output (last 40 lines, exit $rc):"
			tail -n 40 "$out" | sed 's/^/#  > /'
		fi
	fi
	return 0
}

test_done() {
	say "1..$test_count"
	if [ $((test_passed + test_failed + test_skipped)) -ne "$test_count" ]; then
		say "# $test_count tests ran but only $((test_passed + test_failed + test_skipped)) reported: a body left early"
		test_failed=$((test_failed + 1))
	fi
	if [ "$test_skipped" -gt 0 ]; then
		say "# skipped $test_skipped"
	fi
	say "# passed $test_passed failed $test_failed"
	[ "$test_failed" -eq 0 ] || say "# failed tests:$test_failures"
	[ "$test_failed" -eq 0 ] && exit 0
	exit 1
}

# Skip the whole file (exit 0).
skip_all() {
	say "1..0 # SKIP $*"
	say "# passed 0 failed 0"
	exit 0
}

# Stop the whole file with an error.
bail_out() {
	say "Bail out! $*"
	say "# passed $test_passed failed $((test_failed + 1))"
	exit 1
}

# ---------------------------------------------------------------- assertions

# test_cmp EXPECTED ACTUAL: identical files, else show a diff.
test_cmp() {
	diff -u "$1" "$2" >"$TRASH/.diff" && return 0
	{
		echo "test_cmp: $1 and $2 differ:"
		head -n 30 "$TRASH/.diff"
	} >&9
	return 1
}

# test_exit_code WANT CMD...: run CMD, require exit status WANT (a list such
# as "66|78" is accepted).
test_exit_code() {
	local want=$1 rc
	shift
	"$@"
	rc=$?
	case "|$want|" in
	*"|$rc|"*) return 0 ;;
	esac
	echo "test_exit_code: $* exited $rc, want $want" >&9
	return 1
}

# test_line_count FILE OP N: e.g. test_line_count err = 1
test_line_count() {
	local n
	n=$(wc -l <"$1")
	if test "$n" "$2" "$3"; then return 0; fi
	{
		echo "test_line_count: $1 has $n lines, want $2 $3:"
		head -n 20 "$1"
	} >&9
	return 1
}

# wait_for 'CMD' TIMEOUT_SECONDS: re-run CMD (eval'ed) every 0.1 s until it
# succeeds; non-zero after the timeout.
wait_for() {
	local cmd=$1 timeout=${2:-10} end ms
	ms=$(awk -v t="$timeout" 'BEGIN { printf "%d", t * 1000 }')
	end=$(($(date +%s%N) + ms * 1000000))
	while :; do
		if eval "$cmd" >/dev/null 2>&1; then return 0; fi
		if [ "$(date +%s%N)" -ge "$end" ]; then
			echo "wait_for: timed out after ${timeout}s: $cmd" >&9
			return 1
		fi
		sleep 0.1
	done
}

# ---------------------------------------------------------------- captures

# capture_path NAME: path of captures/NAME/ami.raw (or .xz); falls back to the
# copies bundled in tests/data.
capture_path() {
	local c
	for c in "$CDRFLOW_SHARED/captures/$1/ami.raw" "$CDRFLOW_SHARED/captures/$1/ami.raw.xz" \
		"$TEST_ROOT/tests/data/$1.ami.raw.xz"; do
		if [ -r "$c" ]; then echo "$c"; return 0; fi
	done
	echo "capture $1 not found (CDRFLOW_SHARED=$CDRFLOW_SHARED)" >&2
	return 1
}

# capture_sha1s NAME [fake_ami options]: the sha1 of each event, in order.
capture_sha1s() {
	local cap
	cap=$(capture_path "$1") || return 1
	shift
	"$PYTHON" "$FAKE_AMI" --capture "$cap" --list-events "$@" | awk '{print $3}'
}

# ---------------------------------------------------------------- processes

# register_pid PID: kill it at exit.
register_pid() { echo "$1" >>"$TRASH/.pids"; }

# kill_after TENTHS CMD...: run CMD in the background and kill it with -9
# after a random 1..TENTHS tenths of a second (a crash at a random point);
# TENTHS may be 0.N for hundredths.  Its exit status is ignored.
kill_after() {
	local tenths=$1 pid
	shift
	"$@" >/dev/null 2>&1 &
	pid=$!
	case $tenths in
	0.*) sleep 0.0$((RANDOM % ${tenths#0.} + 1)) ;;
	*) sleep 0.$((RANDOM % tenths + 1)) ;;
	esac
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null || :
}

# register_mount DIR: umount it at exit.
register_mount() { echo "$1" >>"$TRASH/.mounts"; }

_fake_n=0
# start_fake_ami ARGS...: start tests/fake_ami.py on an ephemeral port, wait
# for it to listen; sets FAKE_PORT, FAKE_PID, FAKE_ERR (its stderr).
start_fake_ami() {
	local pf
	_fake_n=$((_fake_n + 1))
	pf=$TRASH/fake.port.$_fake_n
	FAKE_ERR=$TRASH/fake.err.$_fake_n
	rm -f "$pf"
	"$PYTHON" "$FAKE_AMI" --port-file "$pf" "$@" </dev/null >"$FAKE_ERR" 2>&1 &
	FAKE_PID=$!
	register_pid "$FAKE_PID"
	if ! wait_for "test -s '$pf' || ! kill -0 $FAKE_PID" 60 >/dev/null || ! test -s "$pf"; then
		echo "start_fake_ami: server did not start:"
		cat "$FAKE_ERR"
		return 1
	fi
	FAKE_PORT=$(cat "$pf")
	export FAKE_PORT FAKE_PID
}

stop_fake_ami() {
	[ -n "${FAKE_PID:-}" ] || return 0
	kill -TERM "$FAKE_PID" 2>/dev/null
	wait "$FAKE_PID" 2>/dev/null
	FAKE_PID=
	return 0
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on (right now).
free_port() {
	"$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# cdrflow_collector ARGS...: run the collector binary.
# start_private_pg: a private PostgreSQL cluster for this script
# (scripts/pg.sh on a free port, PG* exported), stopped and removed at exit
# with the rest of the test's leftovers.
start_private_pg() {
	PGDIR=$(mktemp -d "/tmp/cdrflow-$TEST_NAME-pg.XXXXXX") || bail_out "cannot create a PostgreSQL directory"
	echo $$ >"$PGDIR/.owner"
	CDRFLOW_PGPORT=$(free_port)
	export CDRFLOW_PGPORT
	trap '"$TEST_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"; test_cleanup' EXIT
	eval "$("$TEST_ROOT/scripts/pg.sh" start "$PGDIR")" || bail_out "cannot start PostgreSQL"
}

cdrflow_collector() { "$CDRFLOW_COLLECTOR" "$@"; }

_coll_n=0
# start_collector CONFIG [ARGS...]: run the daemon in the background; sets
# COLLECTOR_PID and COLLECTOR_ERR (its stderr).  The AMI secret comes from
# the environment (CDRFLOW_AMI_SECRET).
start_collector() {
	local cfg=$1
	shift
	_coll_n=$((_coll_n + 1))
	COLLECTOR_ERR=$TRASH/collector.err.$_coll_n
	"$CDRFLOW_COLLECTOR" -c "$cfg" "$@" </dev/null >"$TRASH/collector.out.$_coll_n" 2>"$COLLECTOR_ERR" &
	COLLECTOR_PID=$!
	register_pid "$COLLECTOR_PID"
}

# stop_collector [SIGNAL]: signal the daemon (default TERM), wait for it and
# set COLLECTOR_RC to its exit status; fails if it does not exit within 20 s.
stop_collector() {
	local sig=${1:-TERM} _
	COLLECTOR_RC=
	[ -n "${COLLECTOR_PID:-}" ] || { echo "stop_collector: no collector running"; return 1; }
	kill -"$sig" "$COLLECTOR_PID" 2>/dev/null
	for _ in $(seq 200); do
		kill -0 "$COLLECTOR_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$COLLECTOR_PID" 2>/dev/null; then
		echo "stop_collector: pid $COLLECTOR_PID still running 20 s after SIG$sig; killing it"
		kill -KILL "$COLLECTOR_PID" 2>/dev/null
		wait "$COLLECTOR_PID" 2>/dev/null
		COLLECTOR_PID=
		return 1
	fi
	wait "$COLLECTOR_PID"
	# shellcheck disable=SC2034  # read by the test files
	COLLECTOR_RC=$?
	COLLECTOR_PID=
	return 0
}

# ---------------------------------------------------------------- spool / logs

# stored_sha1s SPOOL [NODE]: the sha1 column of --list, in order.
stored_sha1s() {
	local out
	if [ -n "${2:-}" ]; then
		out=$("$CDRFLOW_COLLECTOR" --list --spool "$1" --node "$2") || return 1
	else
		out=$("$CDRFLOW_COLLECTOR" --list --spool "$1") || return 1
	fi
	[ -z "$out" ] || printf '%s\n' "$out" | awk '{print $7}'
}

# stored_count SPOOL: number of records --list shows (0 if --list fails).
stored_count() {
	local n
	n=$("$CDRFLOW_COLLECTOR" --list --spool "$1" 2>/dev/null | wc -l)
	echo "${n:-0}"
}

# wait_stored SPOOL N [TIMEOUT]: wait until the spool holds at least N
# records, or until its record count has not changed for 1.5 s (a collector
# that lost events never reaches N: do not wait the whole timeout for it).
# Fails if fewer than N records in the end.
wait_stored() {
	local spool=$1 want=$2 timeout=${3:-30} end cur prev=-1 stable=0
	end=$(($(date +%s) + timeout))
	while :; do
		cur=$(stored_count "$spool")
		[ "$cur" -ge "$want" ] && return 0
		if [ "$cur" = "$prev" ]; then stable=$((stable + 1)); else stable=0; fi
		prev=$cur
		if [ $stable -ge 5 ] || [ "$(date +%s)" -ge "$end" ]; then
			echo "wait_stored: $spool holds $cur records, want $want" >&9
			return 1
		fi
		sleep 0.3
	done
}

# sent_sha1s LOG: the sha1s the fake server logged as SENT, in order.
sent_sha1s() { awk '$1 == "SENT" {print $4}' "$1"; }
sent_count() { grep -c '^SENT ' "$1"; }

# verify_ok SPOOL: --verify exits 0 and says corrupt=0 (and records=N if a
# second argument N is given).
verify_ok() {
	local out rc
	out=$("$CDRFLOW_COLLECTOR" --verify --spool "$1")
	rc=$?
	echo "verify: $out (exit $rc)"
	case $out in
	"records="*" segments="*" corrupt=0") ;;
	*) echo "verify_ok: unexpected output"; return 1 ;;
	esac
	[ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || { echo "verify_ok: more than one line"; return 1; }
	if [ -n "${2:-}" ]; then
		case $out in
		"records=$2 "*) ;;
		*) echo "verify_ok: want records=$2"; return 1 ;;
		esac
	fi
	[ "$rc" -eq 0 ]
}

# write_config FILE [key=value ...]: a collector YAML config with one node,
# test-friendly defaults.  Keys: spool node host port username secret_env
# secret_file auth tls tls_ca_file tls_verify connect_timeout ping_interval
# ping_timeout reconnect_min reconnect_max auth_retry fsync fsync_interval
# segment_max_size segment_max_age buffer_size max_event_size
# status_interval log_level log_file.
write_config() {
	local file=$1 kv k v
	shift
	local spool=$TRASH/spool node=pbx1 host=127.0.0.1 port=${FAKE_PORT:-5038}
	local username=collector secret_env=CDRFLOW_AMI_SECRET secret_file='' auth=plain
	local tls=false tls_ca_file='' tls_verify=true connect_timeout=2s
	local ping_interval=1s ping_timeout=1s reconnect_min=100ms reconnect_max=1s auth_retry=500ms
	local fsync=always fsync_interval=100ms segment_max_size=64MiB segment_max_age=1h
	local buffer_size=3MiB max_event_size=1MiB status_interval=60s
	local log_level=info log_file=
	for kv in "$@"; do
		k=${kv%%=*} v=${kv#*=}
		case $k in
		spool|node|host|port|username|secret_env|secret_file|auth|tls|tls_ca_file|tls_verify|\
		connect_timeout|ping_interval|ping_timeout|reconnect_min|reconnect_max|auth_retry|\
		fsync|fsync_interval|segment_max_size|segment_max_age|buffer_size|max_event_size|\
		status_interval|log_level|log_file)
			printf -v "$k" '%s' "$v" ;;
		*) echo "write_config: unknown key $k" >&2; return 1 ;;
		esac
	done
	cat >"$file" <<EOF
spool: "$spool"
log:
  level: $log_level
  file: "$log_file"
collector:
  fsync: $fsync
  fsync_interval: $fsync_interval
  segment_max_size: $segment_max_size
  segment_max_age: $segment_max_age
  buffer_size: $buffer_size
  max_event_size: $max_event_size
  status_interval: $status_interval
  nodes:
    - name: $node
      host: $host
      port: $port
      username: $username
      secret_env: $secret_env
      secret_file: "$secret_file"
      auth: $auth
      tls: $tls
      tls_ca_file: "$tls_ca_file"
      tls_verify: $tls_verify
      connect_timeout: $connect_timeout
      ping_interval: $ping_interval
      ping_timeout: $ping_timeout
      reconnect_min: $reconnect_min
      reconnect_max: $reconnect_max
      auth_retry: $auth_retry
EOF
}

# ---------------------------------------------------------------- prerequisites

if [ "$(id -u)" = 0 ]; then test_set_prereq ROOT; fi
# ASan's quarantine keeps freed memory: peak-RSS bounds only hold without it
if ! ldd "$CDRFLOW_BUILD/cdrflow-etl" 2>/dev/null | grep -q 'lib[at]san'; then test_set_prereq NOT_SANITIZED; fi
if command -v "$PYTHON" >/dev/null 2>&1; then test_set_prereq PYTHON; fi

# Every collector test needs the binary: a missing one is an error, not a skip
# (a silent skip would let CI pass without testing anything).
require_collector() {
	if [ ! -x "$CDRFLOW_COLLECTOR" ]; then
		bail_out "collector binary $CDRFLOW_COLLECTOR not found: build it first (make)"
	fi
	if ! command -v "$PYTHON" >/dev/null 2>&1; then
		bail_out "$PYTHON not found (needed by tests/fake_ami.py)"
	fi
}

# plan_nodes: EXPLAIN (FORMAT JSON) on stdin -> one "NodeType Relation Index"
# line per plan node (spaces in node types as _), for plan assertions.
plan_nodes() {
	"$PYTHON" -c '
import json, sys
def walk(n):
    print(n["Node Type"].replace(" ", "_"), n.get("Relation Name", "-"), n.get("Index Name", "-"))
    for c in n.get("Plans", []):
        walk(c)
walk(json.load(sys.stdin)[0]["Plan"])'
}
