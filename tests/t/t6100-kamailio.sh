#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='Kamailio acc + dialog CDRs (real kamailio, SIPp caller and callees, PostgreSQL) loaded as legs and calls'
. "$(dirname "$0")/../lib/test-lib.sh"
ETL=$CDRFLOW_BUILD/cdrflow-etl
[ -x "$ETL" ] || bail_out "no $ETL (run make)"
KDIR=$TEST_ROOT/tests/kamailio
# real parts: installed by scripts/install-deps.sh; a missing one is a failure, not a skip
for tool in kamailio sipp; do
	command -v $tool >/dev/null || bail_out "$tool is not installed (scripts/install-deps.sh: kamailio, sip-tester)"
done
MPATH=$(dirname "$(dpkg -L kamailio 2>/dev/null | grep '/modules/tm.so$' | head -1)")
[ -f "$MPATH/tm.so" ] || bail_out "kamailio modules not found"
[ -f "$MPATH/db_postgres.so" ] || bail_out "kamailio-postgres-modules is not installed"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || bail_out "PostgreSQL server binaries are not installed"
export TZ=UTC

PGDIR=$(mktemp -d /tmp/cdrflow-t6100.XXXXXX)
chmod 755 "$PGDIR"
export CDRFLOW_PGPORT=$(free_port)
trap '"$TEST_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"; test_cleanup' EXIT
eval "$("$TEST_ROOT/scripts/pg.sh" start "$PGDIR")" || bail_out "cannot start PostgreSQL"
# Kamailio's db_postgres speaks TCP: listen on loopback too, passwords required there
psql -qAtc "ALTER SYSTEM SET listen_addresses = '127.0.0.1'" >/dev/null || bail_out "cannot configure PostgreSQL"
sed -i 's/^\(host .*\)trust$/\1scram-sha-256/' "$PGDIR/data/pg_hba.conf"
eval "$("$TEST_ROOT/scripts/pg.sh" restart "$PGDIR")" || bail_out "cannot restart PostgreSQL"
"$ETL" migrate >/dev/null || bail_out "migrate failed"
q() { psql -Atc "$1"; }
# qis WANT SQL: the query's answer is WANT, else say both
qis() {
	local got
	got=$(q "$2") || return 1
	[ "$got" = "$1" ] && return 0
	echo "qis: $2"
	echo "  got:  $got"
	echo "  want: $1"
	return 1
}

KAMPW=kam-$RANDOM-secret
export KAM_DB_PASSWORD=$KAMPW
psql -qc "CREATE ROLE kamailio LOGIN PASSWORD '$KAMPW'" -c "CREATE DATABASE kamailio OWNER kamailio" >/dev/null ||
	bail_out "cannot create the kamailio database"
kq() { PGPASSWORD=$KAMPW psql -h 127.0.0.1 -U kamailio -d kamailio -qAtc "$1"; }
for f in standard acc dialog; do
	PGPASSWORD=$KAMPW psql -h 127.0.0.1 -U kamailio -d kamailio -q -v ON_ERROR_STOP=1 \
		-f "/usr/share/kamailio/postgres/$f-create.sql" >/dev/null || bail_out "cannot create Kamailio's $f tables"
done
# the db_extra / cdr_extra columns of kamailio.cfg.in
for t in acc missed_calls; do
	kq "ALTER TABLE $t ADD src_user varchar(64) NOT NULL DEFAULT '', ADD src_domain varchar(128) NOT NULL DEFAULT '',
	    ADD src_ip varchar(64) NOT NULL DEFAULT '', ADD dst_user varchar(64) NOT NULL DEFAULT '',
	    ADD dst_domain varchar(128) NOT NULL DEFAULT ''" || bail_out "cannot extend $t"
done
kq "ALTER TABLE acc_cdrs ADD callid varchar(255) NOT NULL DEFAULT '', ADD src_user varchar(64) NOT NULL DEFAULT '',
    ADD src_domain varchar(128) NOT NULL DEFAULT '', ADD src_ip varchar(64) NOT NULL DEFAULT '',
    ADD dst_user varchar(64) NOT NULL DEFAULT '', ADD dst_domain varchar(128) NOT NULL DEFAULT '',
    ADD carrier varchar(64) NOT NULL DEFAULT '', ADD setup_time varchar(32) NOT NULL DEFAULT '',
    ADD failure_time varchar(32) NOT NULL DEFAULT '', ADD sip_code varchar(3) NOT NULL DEFAULT '',
    ADD sip_reason varchar(128) NOT NULL DEFAULT '', ADD answer_time varchar(32) NOT NULL DEFAULT ''" ||
	bail_out "cannot extend acc_cdrs"

KPORT=$(free_port) P_ANS=$(free_port) P_BUSY=$(free_port) P_RING=$(free_port) P_UAC=$(free_port)
cat >dispatcher.list <<EOF2
1 sip:127.0.0.1:$P_ANS 0 0
2 sip:127.0.0.1:$P_BUSY 0 0
3 sip:127.0.0.1:$P_RING 0 0
EOF2
sed -e "s|@KPORT@|$KPORT|g" -e "s|@MPATH@|$MPATH|g" -e "s|@DIR@|$TRASH|g" -e "s|@DBMOD@|postgres|g" \
	-e "s|@DBURL@|postgres://kamailio:$KAMPW@127.0.0.1:$CDRFLOW_PGPORT/kamailio|g" \
	-e "s|@DBURL_SHOWN@|PostgreSQL|g" "$KDIR/kamailio.cfg.in" >kamailio.cfg
chmod 600 kamailio.cfg

start_kamailio() { # [NAME PORT]
	local name=${1:-kamailio} port=${2:-$KPORT}
	kamailio -f "$TRASH/$name.cfg" -DD -E -w "$TRASH" -P "$TRASH/$name.pid" -m 64 -M 8 \
		</dev/null >"$TRASH/$name.log" 2>&1 &
	register_pid $!
	wait_for "ss -lun | grep -q ':$port '" 20 || { tail -n 30 "$TRASH/$name.log"; return 1; }
}

start_uas() { # NAME PORT
	sipp -sf "$KDIR/uas-$1.xml" -i 127.0.0.1 -p "$2" -nostdin -trace_msg -message_file "$TRASH/uas-$1.msg" \
		-trace_err -error_file "$TRASH/uas-$1.err" </dev/null >"$TRASH/uas-$1.out" 2>&1 &
	register_pid $!
	wait_for "ss -lun | grep -q ':$2 '" 10
}

# uac NAME SCENARIO SERVICE CALLER CALLS PAUSE_MS [FINAL]: SIPp as the caller,
# one call at a time; its message trace says what happened
uac() {
	local name=$1 sf=$KDIR/uac-$2.xml
	if [ -n "${7:-}" ]; then
		sed "s/FINAL/$7/" "$KDIR/uac-$2.xml" >"uac-$name.xml"
		sf=$TRASH/uac-$name.xml
	fi
	sipp 127.0.0.1:"${UAC_TARGET:-$KPORT}" -sf "$sf" -s "$3" -key caller "$4" -i 127.0.0.1 -p "$P_UAC" -m "$5" -l 1 -d "$6" \
		-nostdin -trace_msg -message_file "$TRASH/uac-$name.msg" -trace_stat -stf "$TRASH/uac-$name.csv" \
		-trace_err -error_file "$TRASH/uac-$name.err" -timeout 60s -timeout_error \
		</dev/null >"$TRASH/uac-$name.out" 2>&1
}

test_expect_success 'kamailio starts with acc, dialog CDRs and dispatcher on PostgreSQL' '
	kamailio -c -f kamailio.cfg >check.out 2>&1 || { cat check.out; false; } &&
	start_kamailio &&
	start_uas answer "$P_ANS" && start_uas busy "$P_BUSY" && start_uas ring "$P_RING"
'

test_expect_success 'SIPp calls through it: answered (3 s, 3 s, 5 s), busy, cancelled, timed out' '
	uac ans3 answer 02071234567 2001 2 3000 &&
	uac ans5 answer 02079876543 3001 1 5000 &&
	uac busy reject 02081234567 2001 1 0 486 &&
	uac cancel cancel 02091234567 2001 1 2000 &&
	uac timeout reject 02011234567 3001 1 0 408 &&
	"$KDIR/sipp-calls.py" uac-*.msg >sipp.calls &&
	cat sipp.calls &&
	test_line_count sipp.calls = 6 &&
	awk "\$2 == \"-\" || \$3 == \"-\" || \$5 == \"-\" { exit 1 }" sipp.calls &&
	wait_for "test \$(PGPASSWORD=$KAMPW psql -h 127.0.0.1 -U kamailio -d kamailio -Atc \"SELECT count(*) FROM acc_cdrs\") -ge 6" 20 &&
	kq "SELECT id, start_time, end_time, duration, callid, sip_code, carrier, answer_time FROM acc_cdrs ORDER BY id"
'

cat >buy-a.csv <<'CSV'
prefix,description,rate_per_min,connect_fee,increment,grace,effective_from,effective_to
44,UK,0.06,,1/1,,2020-01-01,
4420,London,0.03,,1/1,,2020-01-01,
CSV
cat >sell-acme.csv <<'CSV'
prefix,description,rate_per_min,connect_fee,increment,grace,effective_from,effective_to
44,UK,0.12,,1/1,,2020-01-01,
CSV
write_etl_config() { # FILE [extra source items]
	local file=$1
	cat >"$file" <<YAML
spool: $TRASH/no-spool
tenants:
  trunks: "SIP/127.0.0.1:*"
  rules:
    - tenant: acme
      accountcode: "20*"
    - tenant: beta
      accountcode: "30*"
    - tenant: acme
      accountcode: tenantA
numbering:
  - country_code: "44"
    national_prefix: "0"
    international_prefix: "00"
rating:
  buy:
    - carrier: carrierA
      deck: $TRASH/buy-a.csv
      trunk: "SIP/127.0.0.1:$P_ANS-*"
  sell:
    - tenant: acme
      deck: $TRASH/sell-acme.csv
sources:
  - name: kam1
    type: kamailio
    kamailio:
      db_type: postgresql
      host: 127.0.0.1
      port: $CDRFLOW_PGPORT
      database: kamailio
      user: kamailio
      secret_env: KAM_DB_PASSWORD
      cdrs_table: acc_cdrs
      batch_rows: 2
      poll_interval: 200ms
      columns:
        carrier: carrier
        setup_time: setup_time
        answer_time: answer_time
        failure_time: failure_time
        accountcode: src_user
YAML
	shift
	printf "%s\n" "$@" >>"$file"
}
write_etl_config etl.yaml \
	"  - name: kam1-missed" "    type: kamailio" "    kamailio:" "      port: $CDRFLOW_PGPORT" \
	"      secret_file: $TRASH/kam.secret" "      cdrs_table: \"\"" "      missed_table: missed_calls" \
	"      columns:" "        accountcode: src_user" \
	"  - name: kam1-acc" "    type: kamailio" "    kamailio:" "      port: $CDRFLOW_PGPORT" \
	"      secret_env: KAM_DB_PASSWORD" "      cdrs_table: \"\"" "      acc_table: acc" \
	"      columns:" "        accountcode: src_user"
printf "%s\n" "$KAMPW" >kam.secret
chmod 600 kam.secret

test_expect_success 'cdrflow-etl --once loads the three tables as legs and calls' '
	"$ETL" --once -c etl.yaml >once1.out 2>once1.err || { cat once1.out once1.err; false; } &&
	cat once1.out once1.err &&
	grep "^kamailio: sources=3 rows=12 legs=12 calls=12 skipped=0 " once1.out &&
	! grep -i "error\|warn" once1.err &&
	qis 6 "SELECT count(*) FROM cdr WHERE node = '\''kam1'\''" &&
	qis 6 "SELECT count(*) FROM call WHERE node = '\''kam1'\''" &&
	qis 3 "SELECT count(*) FROM cdr WHERE node = '\''kam1-missed'\''" &&
	qis 3 "SELECT count(*) FROM cdr WHERE node = '\''kam1-acc'\''" &&
	qis 0 "SELECT count(*) FROM cdr WHERE node = '\''kam1'\'' AND call_id IS NULL" &&
	qis "kam1=kamailio,kam1-acc=kamailio,kam1-missed=kamailio" "SELECT string_agg(node || '\''='\'' || type, '\'','\'' ORDER BY node) FROM source_node"
'

# expected disposition of each SIPp final code
disp_of() { case $1 in 200) echo ANSWERED ;; 486) echo BUSY ;; 408|487) echo "NO ANSWER" ;; *) echo FAILED ;; esac; }

test_expect_success 'every leg: disposition, start, duration and billsec as SIPp saw them (within 1 s)' '
	fails=0 &&
	while read -r callid final inv ans end; do
		row=$(q "SELECT disposition, extract(epoch FROM calldate), duration, billsec, coalesce(extract(epoch FROM answer)::text, '\''-'\'') FROM cdr WHERE node = '\''kam1'\'' AND uniqueid = '\''$callid'\''" | tr "|" " ") &&
		echo "$callid sipp: $final $inv $ans $end  cdr: $row" &&
		set -- $row &&
		if [ "$1 ${2:-}" != "$(disp_of "$final")" ] && [ "$1" != "$(disp_of "$final")" ]; then echo "  wrong disposition"; fails=$((fails + 1)); fi &&
		disp=$(disp_of "$final") && n=$(echo "$disp" | wc -w) && shift "$n" &&
		want_dur=$(awk -v a="$inv" -v b="$end" "BEGIN { printf \"%d\", b - a }") &&
		want_bill=$(awk -v a="$ans" -v b="$end" "BEGIN { if (a == \"-\") print 0; else printf \"%d\", b - a }") &&
		awk -v got="$1" -v want="$inv" "BEGIN { d = got - want; exit !(d > -1 && d < 1) }" || { echo "  start $1, SIPp sent the INVITE at $inv"; fails=$((fails + 1)); } &&
		awk -v got="$2" -v want="$want_dur" "BEGIN { d = got - want; exit !(d >= -1 && d <= 1) }" || { echo "  duration $2, want $want_dur"; fails=$((fails + 1)); } &&
		awk -v got="$3" -v want="$want_bill" "BEGIN { d = got - want; exit !(d >= -1 && d <= 1) }" || { echo "  billsec $3, want $want_bill"; fails=$((fails + 1)); } &&
		true || return 1
	done <sipp.calls &&
	test "$fails" = 0 &&
	qis "ANSWERED,ANSWERED,ANSWERED,BUSY,NO ANSWER,NO ANSWER" "SELECT string_agg(disposition, '\'','\'' ORDER BY disposition) FROM cdr WHERE node = '\''kam1'\''"
'

test_expect_success 'the SIP codes and the callee side as Kamailio logged them' '
	qis "200 OK,200 OK,200 OK,408 Request Timeout,486 Busy Here,487 Request Terminated" "SELECT string_agg(lastdata, '\'','\'' ORDER BY lastdata) FROM cdr WHERE node = '\''kam1'\''" &&
	qis 6 "SELECT count(*) FROM cdr WHERE node = '\''kam1'\'' AND channel LIKE '\''SIP/127.0.0.1-%'\'' AND dcontext = '\''kamailio'\''" &&
	qis "$(printf "SIP/127.0.0.1:%s\n" $P_ANS $P_BUSY $P_RING | LC_ALL=C sort | paste -sd,)" "SELECT string_agg(DISTINCT trunk, '\'','\'' ORDER BY trunk) FROM cdr WHERE node = '\''kam1'\''"
'

test_expect_success 'tenants, E.164, direction and rating come from the same rules as Asterisk legs' '
	qis 4 "SELECT count(*) FROM cdr WHERE node = '\''kam1'\'' AND src LIKE '\''20%'\'' AND tenant = '\''acme'\''" &&
	qis 2 "SELECT count(*) FROM cdr WHERE node = '\''kam1'\'' AND src LIKE '\''30%'\'' AND tenant = '\''beta'\''" &&
	qis 6 "SELECT count(*) FROM cdr WHERE node = '\''kam1'\'' AND direction = '\''outbound'\'' AND dst_e164 = '\''+44'\'' || substr(dst, 2)" &&
	qis GB "SELECT string_agg(DISTINCT dst_country, '\'','\'') FROM cdr WHERE node = '\''kam1'\''" &&
	q "SELECT uniqueid, tenant, carrier, rate_status, billsec, buy_cost, sell_cost, margin, buy_prefix FROM cdr WHERE node = '\''kam1'\'' ORDER BY sequence" &&
	qis 3 "SELECT count(*) FROM cdr WHERE node = '\''kam1'\'' AND disposition = '\''ANSWERED'\'' AND carrier = '\''carrierA'\'' AND buy_prefix = '\''4420'\'' AND buy_cost = billsec * 500 AND rate_status IS NOT NULL" &&
	qis 2 "SELECT count(*) FROM cdr WHERE node = '\''kam1'\'' AND tenant = '\''acme'\'' AND disposition = '\''ANSWERED'\'' AND sell_cost = billsec * 2000 AND margin = sell_cost - buy_cost" &&
	qis 6 "SELECT count(*) FROM call WHERE node = '\''kam1'\'' AND tenant IS NOT NULL AND direction = '\''outbound'\''" &&
	qis "answered,answered,answered,busy,no_answer,no_answer" "SELECT string_agg(outcome, '\'','\'' ORDER BY outcome) FROM call WHERE node = '\''kam1'\''"
'

test_expect_success 'missed_calls and acc (INVITE/BYE pairs) give the same calls as the dialog CDRs' '
	qis "$(q "SELECT string_agg(uniqueid || '\'' '\'' || disposition, '\'','\'' ORDER BY uniqueid) FROM cdr WHERE node = '\''kam1'\'' AND disposition <> '\''ANSWERED'\''")" \
	    "SELECT string_agg(uniqueid || '\'' '\'' || disposition, '\'','\'' ORDER BY uniqueid) FROM cdr WHERE node = '\''kam1-missed'\''" &&
	qis 3 "SELECT count(*) FROM cdr a JOIN cdr b ON a.uniqueid = b.uniqueid WHERE a.node = '\''kam1-acc'\'' AND b.node = '\''kam1'\'' AND abs(a.billsec - b.billsec) <= 1 AND a.disposition = '\''ANSWERED'\''"
'

test_expect_success 'a second --once writes nothing twice; a new call is loaded alone' '
	before=$(q "SELECT count(*) || '\'' '\'' || (SELECT count(*) FROM call) FROM cdr") &&
	"$ETL" --once -c etl.yaml >once2.out 2>once2.err || { cat once2.out once2.err; false; } &&
	grep "^kamailio: sources=3 rows=0 legs=0 calls=0 " once2.out &&
	qis "$before" "SELECT count(*) || '\'' '\'' || (SELECT count(*) FROM call) FROM cdr" &&
	uac busy2 reject 02081112222 2002 1 0 486 &&
	wait_for "test \$(PGPASSWORD=$KAMPW psql -h 127.0.0.1 -U kamailio -d kamailio -Atc \"SELECT count(*) FROM acc_cdrs\") -ge 7" 20 &&
	"$ETL" --once -c etl.yaml >once3.out 2>once3.err || { cat once3.out once3.err; false; } &&
	grep "^kamailio: sources=3 rows=2 legs=2 calls=2 " once3.out &&
	qis 7 "SELECT count(*) FROM cdr WHERE node = '\''kam1'\''" &&
	qis "" "SELECT count(*) FROM cdr WHERE node IN ('\''kam1'\'', '\''kam1-missed'\'') GROUP BY uniqueid HAVING count(*) > 2" &&
	qis "$(kq "SELECT max(id) FROM acc_cdrs")" "SELECT last_id FROM kamailio_checkpoint WHERE source = '\''kam1'\'' AND tbl = '\''acc_cdrs'\''"
'

test_expect_success 'a gap in the keys before a young row waits (an insert may still commit), then passes' '
	kq "SELECT nextval(pg_get_serial_sequence('\''acc_cdrs'\'', '\''id'\''))" >/dev/null &&
	next=$(kq "INSERT INTO acc_cdrs (start_time, end_time, duration, callid, src_user, dst_user, sip_code, sip_reason)
	    VALUES (localtimestamp(0), localtimestamp(0), 0, '\''gap'\'', '\''2001'\'', '\''02070000000'\'', '\''486'\'', '\''Busy Here'\'') RETURNING id" | head -n 1) &&
	kq "UPDATE acc_cdrs SET callid = '\''gap-$next'\'' WHERE id = $next" &&
	"$ETL" --once -c etl.yaml >gap1.out 2>gap1.err &&
	grep "^kamailio: sources=3 rows=0 " gap1.out &&
	sleep 3 &&
	"$ETL" --once -c etl.yaml >gap2.out 2>gap2.err &&
	grep "^kamailio: sources=3 rows=1 " gap2.out &&
	qis "BUSY" "SELECT disposition FROM cdr WHERE node = '\''kam1'\'' AND uniqueid = '\''gap-$next'\''" &&
	qis "$next" "SELECT last_id FROM kamailio_checkpoint WHERE source = '\''kam1'\'' AND tbl = '\''acc_cdrs'\''"
'

test_expect_success 'cdrflow-etl --follow loads a new call as it comes, says once that a source is down, stops on SIGTERM' '
	write_etl_config etl-follow.yaml "  - name: kamdown" "    kamailio:" "      port: 1" "      poll_interval: 100ms" &&
	{ "$ETL" --follow -c etl-follow.yaml >follow.out 2>follow.err & } &&
	fpid=$! && register_pid $fpid &&
	uac follow answer 02071115555 2001 1 1000 &&
	wait_for "test \$(psql -Atc \"SELECT count(*) FROM cdr WHERE node = '\''kam1'\''\") = 9" 20 &&
	kill -TERM $fpid && wait $fpid &&
	cat follow.out follow.err &&
	grep "^kamailio: sources=1 rows=[1-9]" follow.out &&
	test "$(grep -c "source kamdown: PostgreSQL" follow.err)" = 1 &&
	qis "ANSWERED 1" "SELECT disposition || '\'' '\'' || (billsec BETWEEN 1 AND 2)::int FROM cdr WHERE node = '\''kam1'\'' AND dst = '\''02071115555'\''"
'

test_expect_success 'one tenant, Asterisk and Kamailio legs together: cdrflow-query and source_node' '
	S07=$(capture_path s07_trunk_tenant) &&
	cdrflow_collector --replay "$S07" --spool spool --node pbx >/dev/null &&
	"$ETL" --once -c etl.yaml --spool spool >ast.out 2>ast.err || { cat ast.out ast.err; false; } &&
	kam=$(q "SELECT count(*) FROM cdr WHERE tenant = '\''acme'\'' AND node = '\''kam1'\''") &&
	ast=$(q "SELECT count(*) FROM cdr WHERE tenant = '\''acme'\'' AND node = '\''pbx'\''") &&
	echo "acme legs: kamailio $kam, asterisk $ast" && test "$kam" -gt 0 && test "$ast" -gt 0 &&
	"$CDRFLOW_BUILD/cdrflow-query" calls --legs --tenant acme --from 2000-01-01 --to 2099-12-31 --format csv --no-header \
		--limit 0 >acme.csv 2>acme.err || { echo "cdrflow-query: exit $?"; cat acme.err; false; } &&
	q "SELECT node, count(*) FROM cdr WHERE tenant = '\''acme'\'' GROUP BY 1 ORDER BY 1" &&
	test_line_count acme.csv = $(q "SELECT count(*) FROM cdr WHERE tenant = '\''acme'\''") &&
	grep -q "SIP/127.0.0.1-" acme.csv && grep -q "SIP/loop-" acme.csv &&
	grep -q ",kam1,kamailio" acme.csv && grep -q ",pbx,asterisk" acme.csv &&
	"$CDRFLOW_BUILD/cdrflow-report" -q --templates "$TEST_ROOT/templates" run tenant-statement --param tenant=acme \
		--from "$(q "SELECT min(calldate)::date FROM cdr WHERE tenant = '\''acme'\''")" \
		--to "$(q "SELECT max(calldate)::date FROM cdr WHERE tenant = '\''acme'\''")" -f csv -o statement >/dev/null &&
	cat statement/*by-source.csv &&
	grep -q "^\"Kamailio\"," statement/*by-source.csv &&
	qis "kamailio $kam,asterisk $ast" "SELECT string_agg(src || '\'' '\'' || n, '\'','\'' ORDER BY src DESC) FROM (SELECT coalesce(s.type, '\''asterisk'\'') AS src, count(*) AS n FROM cdr c LEFT JOIN source_node s USING (node) WHERE c.tenant = '\''acme'\'' AND c.node IN ('\''kam1'\'', '\''pbx'\'') GROUP BY 1) x"
'

test_expect_success 'a wrong password is refused and nothing moves' '
	KAM_DB_PASSWORD=wrong test_exit_code 69 "$ETL" --once -c etl.yaml >bad.out 2>bad.err &&
	grep "source kam1" bad.err && ! grep -F "$KAMPW" bad.err bad.out
'

test_expect_success 'bad sources are configuration errors (78), in both programs' '
	printf "sources:\n  - name: k\n    kamailio:\n      cdrs_table: \"acc; drop\"\n" >bad1.yaml &&
	test_exit_code 78 "$ETL" --once -c bad1.yaml 2>bad1.err && grep "not a plain SQL name" bad1.err &&
	test_exit_code 78 cdrflow_collector -c bad1.yaml --dump-config >/dev/null 2>bad1c.err &&
	printf "sources:\n  - name: k\n    kamailio:\n      options: \"password=x\"\n" >bad2.yaml &&
	test_exit_code 78 "$ETL" --once -c bad2.yaml 2>bad2.err && grep "no password here" bad2.err &&
	printf "sources:\n  - name: k\n    type: kamailio\n  - name: k\n    type: kamailio\n" >bad3.yaml &&
	test_exit_code 78 "$ETL" --once -c bad3.yaml 2>bad3.err && grep "used twice" bad3.err &&
	printf "sources:\n  - name: k\n    kamailio:\n      cdrs_table: \"\"\n" >bad4.yaml &&
	test_exit_code 78 "$ETL" --once -c bad4.yaml 2>bad4.err && grep "no table to read" bad4.err &&
	printf "sources:\n  - name: k\n    kamailio:\n      colour: red\n" >bad5.yaml &&
	test_exit_code 78 "$ETL" --once -c bad5.yaml 2>bad5.err && grep "unknown key" bad5.err &&
	printf "collector:\n  nodes:\n    - name: pbx1\n      username: u\nsources:\n  - name: pbx1\n" >bad6.yaml &&
	test_exit_code 78 cdrflow_collector -c bad6.yaml --dump-config >/dev/null 2>bad6.err && grep "AMI node" bad6.err
'

test_expect_success 'the collector accepts the same file and ignores the kamailio sources' '
	cdrflow_collector -c etl.yaml --dump-config >dump.out 2>dump.err || { cat dump.err; false; } &&
	grep -q "kam1" dump.out
'

# ---------------------------------------------------------------- MariaDB
# The same proxy writing to MySQL/MariaDB (db_mysql): a private server owned
# by this test, on loopback
MYDIR=$TRASH/mysql
MYPORT=$(free_port) KPORT2=$(free_port)
myq() { mariadb --no-defaults -S "$MYDIR/sock" -u root -N -B "$@"; }
kmq() { mariadb --no-defaults -h 127.0.0.1 -P "$MYPORT" -u kamailio -p"$KAMPW" -N -B kamailio -e "$1"; }

test_expect_success 'a private MariaDB with Kamailio acc tables, a second Kamailio on db_mysql' '
	command -v mariadbd >/dev/null && command -v mariadb-install-db >/dev/null &&
	[ -f "$MPATH/db_mysql.so" ] &&
	mkdir -p "$MYDIR" &&
	mariadb-install-db --no-defaults --datadir="$MYDIR/data" --user=root --skip-test-db \
		--auth-root-authentication-method=socket >"$MYDIR/install.log" 2>&1 || { cat "$MYDIR/install.log"; false; } &&
	{ mariadbd --no-defaults --datadir="$MYDIR/data" --socket="$MYDIR/sock" --port="$MYPORT" \
		--bind-address=127.0.0.1 --user=root --pid-file="$MYDIR/pid" --log-error="$MYDIR/error.log" \
		--skip-log-bin --innodb-buffer-pool-size=32M </dev/null >/dev/null 2>&1 & } &&
	register_pid $! &&
	wait_for "test -S \"$MYDIR/sock\" && myq -e \"select 1\"" 60 || { tail -n 20 "$MYDIR/error.log"; false; } &&
	myq -e "CREATE DATABASE kamailio; CREATE USER '\''kamailio'\''@'\''127.0.0.1'\'' IDENTIFIED BY '\''$KAMPW'\'';
		GRANT ALL ON kamailio.* TO '\''kamailio'\''@'\''127.0.0.1'\''" &&
	for f in standard acc; do
		mariadb --no-defaults -h 127.0.0.1 -P "$MYPORT" -u kamailio -p"$KAMPW" kamailio \
			<"/usr/share/kamailio/mysql/$f-create.sql" || return 1
	done &&
	for t in acc missed_calls; do
		kmq "ALTER TABLE $t ADD src_user varchar(64) NOT NULL DEFAULT '\'''\'', ADD src_domain varchar(128) NOT NULL DEFAULT '\'''\'',
		     ADD src_ip varchar(64) NOT NULL DEFAULT '\'''\'', ADD dst_user varchar(64) NOT NULL DEFAULT '\'''\'',
		     ADD dst_domain varchar(128) NOT NULL DEFAULT '\'''\''" || return 1
	done &&
	kmq "ALTER TABLE acc_cdrs ADD callid varchar(255) NOT NULL DEFAULT '\'''\'', ADD src_user varchar(64) NOT NULL DEFAULT '\'''\'',
	     ADD src_domain varchar(128) NOT NULL DEFAULT '\'''\'', ADD src_ip varchar(64) NOT NULL DEFAULT '\'''\'',
	     ADD dst_user varchar(64) NOT NULL DEFAULT '\'''\'', ADD dst_domain varchar(128) NOT NULL DEFAULT '\'''\'',
	     ADD carrier varchar(64) NOT NULL DEFAULT '\'''\'', ADD setup_time varchar(32) NOT NULL DEFAULT '\'''\'',
	     ADD failure_time varchar(32) NOT NULL DEFAULT '\'''\'', ADD sip_code varchar(3) NOT NULL DEFAULT '\'''\'',
	     ADD sip_reason varchar(128) NOT NULL DEFAULT '\'''\'', ADD answer_time varchar(32) NOT NULL DEFAULT '\'''\''" &&
	sed -e "s|@KPORT@|$KPORT2|g" -e "s|@MPATH@|$MPATH|g" -e "s|@DIR@|$TRASH|g" -e "s|@DBMOD@|mysql|g" \
		-e "s|@DBURL@|mysql://kamailio:$KAMPW@127.0.0.1:$MYPORT/kamailio|g" \
		-e "s|@DBURL_SHOWN@|MariaDB|g" "$KDIR/kamailio.cfg.in" >kamailio2.cfg &&
	chmod 600 kamailio2.cfg &&
	kamailio -c -f kamailio2.cfg >check2.out 2>&1 || { cat check2.out; false; } &&
	start_kamailio kamailio2 "$KPORT2"
'

test_expect_success 'SIPp through the MariaDB proxy: answered (4 s), busy, cancelled' '
	UAC_TARGET=$KPORT2 uac my-ans answer 02071230000 2003 1 4000 &&
	UAC_TARGET=$KPORT2 uac my-busy reject 02081230000 3003 1 0 486 &&
	UAC_TARGET=$KPORT2 uac my-cancel cancel 02091230000 2003 1 1500 &&
	"$KDIR/sipp-calls.py" uac-my-*.msg >sipp-my.calls &&
	cat sipp-my.calls &&
	test_line_count sipp-my.calls = 3 &&
	wait_for "test \$(kmq \"SELECT count(*) FROM acc_cdrs\") -ge 3" 20 &&
	kmq "SELECT id, start_time, end_time, duration, callid, sip_code, carrier, answer_time FROM acc_cdrs ORDER BY id"
'

test_expect_success 'cdrflow-etl reads MariaDB (db_type mysql): the same legs, once' '
	write_etl_config etl-my.yaml &&
	sed -i -e "s/name: kam1$/name: kam2/" -e "s/db_type: postgresql/db_type: mysql/" \
		-e "s/port: $CDRFLOW_PGPORT/port: $MYPORT/" etl-my.yaml &&
	"$ETL" --once -c etl-my.yaml >my1.out 2>my1.err || { cat my1.out my1.err; false; } &&
	cat my1.out my1.err &&
	grep "^kamailio: sources=1 rows=3 legs=3 calls=3 skipped=0 " my1.out &&
	fails=0 &&
	while read -r callid final inv ans end; do
		row=$(q "SELECT replace(disposition, '\'' '\'', '\''_'\''), extract(epoch FROM calldate), duration, billsec, tenant FROM cdr WHERE node = '\''kam2'\'' AND uniqueid = '\''$callid'\''" | tr "|" " ") &&
		echo "$callid sipp: $final $inv $ans $end  cdr: $row" &&
		set -- $row &&
		want_dur=$(awk -v a="$inv" -v b="$end" "BEGIN { printf \"%d\", b - a }") &&
		want_bill=$(awk -v a="$ans" -v b="$end" "BEGIN { if (a == \"-\") print 0; else printf \"%d\", b - a }") &&
		{ [ "$1" = "$(disp_of "$final" | tr " " _)" ] || { echo "  wrong disposition"; fails=$((fails + 1)); }; } &&
		{ awk -v got="$2" -v want="$inv" "BEGIN { d = got - want; exit !(d > -1 && d < 1) }" || { echo "  start"; fails=$((fails + 1)); }; } &&
		{ awk -v got="$3" -v want="$want_dur" "BEGIN { d = got - want; exit !(d >= -1 && d <= 1) }" || { echo "  duration, want $want_dur"; fails=$((fails + 1)); }; } &&
		{ awk -v got="$4" -v want="$want_bill" "BEGIN { d = got - want; exit !(d >= -1 && d <= 1) }" || { echo "  billsec, want $want_bill"; fails=$((fails + 1)); }; } || return 1
	done <sipp-my.calls &&
	test "$fails" = 0 &&
	qis "acme,acme,beta" "SELECT string_agg(tenant, '\'','\'' ORDER BY tenant) FROM cdr WHERE node = '\''kam2'\''" &&
	"$ETL" --once -c etl-my.yaml >my2.out 2>my2.err &&
	grep "^kamailio: sources=1 rows=0 legs=0 calls=0 " my2.out &&
	qis 3 "SELECT count(*) FROM cdr WHERE node = '\''kam2'\''"
'

test_done
