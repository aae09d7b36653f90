#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='secrets: no password in --db (etl, query), the AMI secret not in the environment, ps or a core of the running collector'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
Q=$CDRFLOW_BUILD/cdrflow-query
command -v gcore >/dev/null 2>&1 && test_set_prereq GCORE
CAP=$(capture_path s01_answered) || bail_out "capture s01_answered not found"
SECRET=Sekr1t-$$-$RANDOM-xq
SRVLOG=$TRASH/server.log
nauth() { grep -c '^AUTH ok' "$SRVLOG"; }
# no_secret_in PID: the secret is in none of the process's environment,
# command line and (with gcore) a core of it taken now
no_secret_in() {
	! tr '\0' '\n' </proc/$1/environ | grep -q -- "$SECRET" || { echo "secret in /proc/$1/environ"; return 1; }
	! ps -o args= -p $1 | grep -q -- "$SECRET" || { echo "secret in ps"; return 1; }
	if test_have_prereq GCORE; then
		rm -f core.$1 && gcore -o core $1 >/dev/null 2>&1 && test -s core.$1 || { echo "gcore failed"; return 1; }
		# the core is a real one: it holds the spool path (heap) ...
		grep -a -q -- "$TRASH/spool" core.$1 || { echo "core without the spool path?"; return 1; }
		# ... and not the secret
		n=$(grep -a -c -- "$SECRET" core.$1); rm -f core.$1
		echo "core of $1: $n lines with the secret"
		test "$n" = 0
	fi
}

test_expect_success 'cdrflow-etl and cdrflow-query refuse a password in --db (key=value and URI): 64, never in ps' '
	test_exit_code 64 timeout 10 "$ETL" --follow --db "host=/nonexistent dbname=x password=$SECRET" 2>err &&
	grep -q "must not carry a password (it would show in ps): use PGPASSWORD" err &&
	! grep -q -- "$SECRET" err &&
	test_exit_code 64 "$ETL" --once --db "postgresql://u:$SECRET@localhost/x" 2>err &&
	test_exit_code 64 "$Q" calls --db "postgresql://u:$SECRET@localhost/x" 2>err &&
	grep -q "must not carry a password" err &&
	test_exit_code 64 "$Q" flow x --db "dbname=x password=$SECRET" 2>err &&
	"$ETL" --help | grep -q "one carrying a" && "$Q" --help | grep -q "one carrying a password is refused"
'

test_expect_success 'ps during cdrflow-etl --follow (password from PGPASSWORD): not in its command line' '
	PGPASSWORD=$SECRET "$ETL" --follow --db "host=/nonexistent dbname=x" -c /dev/null --spool sp >/dev/null 2>follow.err &
	pid=$! && register_pid $pid && sleep 0.5 &&
	kill -0 $pid && ! ps -o args= -p $pid | grep -q -- "$SECRET" &&
	kill $pid; wait $pid; ! grep -q -- "$SECRET" follow.err
'

test_expect_success 'setup: fake AMI (plain login), the connection cut once to force a second login' '
	start_fake_ami --capture "$CAP" --fault slow:rate=100 --fault disconnect-mid-event:after=50:conn=1 \
		--secret "$SECRET" --log "$SRVLOG"
'

test_expect_success GCORE,NOT_SANITIZED 'secret_env: after two logins, not in the environment, ps or a core' '
	write_config env.yaml spool="$TRASH/spool" auth=plain reconnect_min=100ms &&
	CDRFLOW_AMI_SECRET=$SECRET start_collector env.yaml &&
	wait_for "[ \$(nauth) -ge 2 ]" 20 && sleep 0.3 &&
	no_secret_in $COLLECTOR_PID &&
	stop_collector && test "$COLLECTOR_RC" = 0
'

test_expect_success GCORE,NOT_SANITIZED 'secret_file, md5: read at each login, no copy in between' '
	n0=$(nauth) && printf "%s\n" "$SECRET" >secret && chmod 600 secret &&
	write_config file.yaml spool="$TRASH/spool" auth=md5 secret_file="$TRASH/secret" secret_env=NO_SUCH_VAR &&
	start_collector file.yaml &&
	wait_for "[ \$(nauth) -gt $n0 ]" 20 && sleep 0.3 &&
	no_secret_in $COLLECTOR_PID &&
	stop_collector && test "$COLLECTOR_RC" = 0
'

test_done
