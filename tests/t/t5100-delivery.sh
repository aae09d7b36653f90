#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='delivery: mail through a real SMTP server (STARTTLS/TLS, AUTH, MIME), signed webhooks with retries, the outbox spool, alerts'
. "$(dirname "$0")/../lib/test-lib.sh"
DELIVER=$CDRFLOW_BUILD/tests/deliver
[ -x "$DELIVER" ] || bail_out "no $DELIVER (run make $DELIVER)"
command -v openssl >/dev/null 2>&1 || bail_out "openssl is not installed"
command -v "$PYTHON" >/dev/null 2>&1 || bail_out "$PYTHON is not installed"
D=$TEST_ROOT/tests/delivery

# The SMTP server is aiosmtpd from Debian (python3-aiosmtpd): the system
# python3 has it even when $PYTHON is another installation.
SMTP_PY=
for p in /usr/bin/python3 "$PYTHON"; do
	if "$p" -c 'import aiosmtpd' 2>/dev/null; then SMTP_PY=$p; break; fi
done
[ -n "$SMTP_PY" ] && test_set_prereq AIOSMTPD
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && test_set_prereq PG

# ------------------------------------------------------------ fixtures
openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 2 -subj /CN=localhost \
	-addext "subjectAltName=IP:127.0.0.1,DNS:localhost" >/dev/null 2>&1 || bail_out "openssl req failed"
PW='pw-Quahz4ee-not-in-logs'
printf '%s\n' "$PW" >smtp.pw
printf 'wrong-password\n' >smtp.badpw
SECRET='whsec-ieT3oofa-not-in-logs'
printf '%s\n' "$SECRET" >hook.secret
printf 'some-other-secret\n' >hook.badsecret

# report files: the real renderers when built, else bytes of the same kinds
mkdir -p att
if [ -x "$CDRFLOW_BUILD/tests/report-render-demo" ] &&
	"$CDRFLOW_BUILD/tests/report-render-demo" --rows 300 att >/dev/null 2>&1; then
	mv att/report.pdf "att/Tagesbericht Zürich ☎.pdf"
else
	head -c 150000 /dev/urandom >"att/Tagesbericht Zürich ☎.pdf"
	printf '"start","dst","cost"\r\n"2024-05-01 08:00:00","+49 30 1234567",1.25\r\n"Zürich",".dot",0\r\n' >att/report.csv
	head -c 40000 /dev/urandom >att/report.xlsx
fi
ATT_PDF="att/Tagesbericht Zürich ☎.pdf"
SUBJECT='Tagesbericht Zürich ☎ 2024-05-01 — calls, costs and quality'
printf 'Calls: 300\nAnswered: 76.2%%\n' >body.txt
printf '<html><body><h1>Calls: 300</h1><p>Answered: 76.2%%</p></body></html>\n' >body.html

_srv=0
# start_smtp MODE [PORT] [extra args]: sets SMTP_PORT, SMTP_PID, SMTP_LOG, SMTP_MD
start_smtp() {
	local mode=$1 port=${2:-0} pf
	shift 2 2>/dev/null || shift
	_srv=$((_srv + 1))
	pf=$TRASH/smtp.port.$_srv
	SMTP_MD=$TRASH/maildir.$_srv SMTP_LOG=$TRASH/smtp.log.$_srv
	"$SMTP_PY" "$D/smtp_server.py" --port "$port" --port-file "$pf" --maildir "$SMTP_MD" --log "$SMTP_LOG" \
		--mode "$mode" --cert "$TRASH/cert.pem" --key "$TRASH/key.pem" --user reporter \
		--password-file "$TRASH/smtp.pw" "$@" >"$TRASH/smtp.err.$_srv" 2>&1 &
	SMTP_PID=$!
	register_pid $SMTP_PID
	wait_for "test -s '$pf' || ! kill -0 $SMTP_PID" 30 && test -s "$pf" || {
		cat "$TRASH/smtp.err.$_srv"
		return 1
	}
	SMTP_PORT=$(cat "$pf")
}
stop_pid() { kill -TERM "$1" 2>/dev/null; wait "$1" 2>/dev/null; return 0; }

# start_hook [PORT] [extra args]: sets HOOK_PORT, HOOK_PID, HOOK_LOG (accepted), HOOK_REQ (every request)
start_hook() {
	local port=${1:-0} pf
	shift 2>/dev/null
	_srv=$((_srv + 1))
	pf=$TRASH/hook.port.$_srv
	HOOK_LOG=$TRASH/hook.log.$_srv HOOK_REQ=$TRASH/hook.log.$_srv.requests
	"$PYTHON" "$D/webhook_receiver.py" --port "$port" --port-file "$pf" --secret-file "$TRASH/hook.secret" \
		--log "$HOOK_LOG" --fail-file "$TRASH/hook.fail" "$@" >"$TRASH/hook.err.$_srv" 2>&1 &
	HOOK_PID=$!
	register_pid $HOOK_PID
	wait_for "test -s '$pf' || ! kill -0 $HOOK_PID" 30 && test -s "$pf" || {
		cat "$TRASH/hook.err.$_srv"
		return 1
	}
	HOOK_PORT=$(cat "$pf")
	: >"$HOOK_REQ"
}

# cfg FILE [VAR=value...]: a delivery config; VARs: SPOOL MPORT MTLS MCA MPWFILE MUSER URL WSECRET WMAX WBMIN
cfg() {
	local f=$1 kv
	shift
	local SPOOL=$TRASH/spool MPORT=${SMTP_PORT:-25} MTLS=starttls MCA=$TRASH/cert.pem MPWFILE=$TRASH/smtp.pw
	local MUSER=reporter URL=http://127.0.0.1:${HOOK_PORT:-9}/hook WSECRET=$TRASH/hook.secret WMAX=3 WBMIN=50ms
	for kv in "$@"; do printf -v "${kv%%=*}" '%s' "${kv#*=}"; done
	printf '%s\n' "report:" "  delivery:" "    spool: \"$SPOOL\"" "    mail:" "      host: 127.0.0.1" \
		"      port: $MPORT" "      tls: $MTLS" "      tls_ca_file: \"$MCA\"" "      username: \"$MUSER\"" \
		"      password_file: \"$MPWFILE\"" "      from: \"cdrflow Reports <reports@example.com>\"" \
		"      to: \"ops@example.com, Zoë Ops <zoe@example.net>\"" "      subject: \"$SUBJECT\"" \
		"      timeout: 20s" "      connect_timeout: 2s" \
		"    webhook:" "      url: \"$URL\"" "      secret_file: \"$WSECRET\"" "      max_attempts: $WMAX" \
		"      backoff_min: $WBMIN" "      backoff_max: 1s" "      timeout: 5s" "      connect_timeout: 1s" >"$f"
}
# msgs DIR: number of queued messages in a spool channel directory
msgs() { find "$1" -maxdepth 1 -name '*.msg' 2>/dev/null | wc -l; }
dead() { find "$1/dead" -maxdepth 1 -name '*.msg' 2>/dev/null | wc -l; }
received() { find "$1/new" -type f 2>/dev/null | wc -l; }
newest() { ls -t "$1"/new/* | head -1; }
check_mail() {
	"$PYTHON" "$D/check_mail.py" "$1" --subject "$SUBJECT" --to ops@example.com,zoe@example.net "${@:2}"
}
ALL_ATT=("$ATT_PDF" att/report.csv att/report.xlsx)
send_mail() { "$DELIVER" mail -c "$1" --text body.txt --html body.html \
	--attach "$ATT_PDF" --attach att/report.csv --attach att/report.xlsx "${@:2}"; }

# ------------------------------------------------------------ mail

test_expect_success AIOSMTPD 'mail over STARTTLS with AUTH: subject, recipients, text+HTML, attachments byte for byte' '
	start_smtp starttls &&
	cfg m1.yaml &&
	send_mail m1.yaml >out 2>err &&
	cat out err &&
	grep -q "result=delivered" out &&
	test "$(received "$SMTP_MD")" = 1 &&
	check_mail "$(newest "$SMTP_MD")" --html "${ALL_ATT[@]}" >chk &&
	cat chk && test_line_count chk = 3 &&
	"$PYTHON" -c "import json,sys; d=json.loads(open(sys.argv[1]).readline()); \
		assert d[\"tls\"] is True and d[\"auth_user\"] == \"reporter\", d; \
		assert d[\"mail_from\"] == \"reports@example.com\", d; \
		assert d[\"rcpt_tos\"] == [\"ops@example.com\", \"zoe@example.net\"], d" "$SMTP_LOG" &&
	test "$(msgs spool/mail)" = 0
'

test_expect_success AIOSMTPD 'mail: a wrong password exits 77, nothing is delivered, the message waits in the spool' '
	cfg m2.yaml MPWFILE=$TRASH/smtp.badpw &&
	before=$(received "$SMTP_MD") &&
	test_exit_code 77 send_mail m2.yaml --key report-daily-2024-05-01 >out 2>err &&
	cat out err &&
	grep -q "\"ok\": false" "$SMTP_LOG.auth" &&
	test "$(received "$SMTP_MD")" = "$before" &&
	test "$(msgs spool/mail)" = 1 &&
	grep -q "^key: report-daily-2024-05-01\$" spool/mail/*.msg &&
	grep -q "^meta: reports@example.com ops@example.com,zoe@example.net\$" spool/mail/*.msg
'

test_expect_success AIOSMTPD 'mail: sending the same report again does not queue a second copy' '
	test_exit_code 77 send_mail m2.yaml --key report-daily-2024-05-01 >out 2>err &&
	test "$(msgs spool/mail)" = 1
'

test_expect_success AIOSMTPD 'mail: a later run with the right password delivers the queued message intact' '
	before=$(received "$SMTP_MD") &&
	"$DELIVER" retry -c m1.yaml --channel mail >out 2>err &&
	cat out err &&
	grep -q "^mail delivered=1 queued=0 dead=0" out &&
	test "$(received "$SMTP_MD")" = $((before + 1)) &&
	check_mail "$(newest "$SMTP_MD")" --html "${ALL_ATT[@]}" &&
	test "$(msgs spool/mail)" = 0
'

test_expect_success AIOSMTPD 'mail: the certificate is verified: with no CA that trusts the server nothing is sent (69, queued)' '
	cfg m3.yaml MCA= SPOOL=$TRASH/spool3 &&
	before=$(received "$SMTP_MD") &&
	test_exit_code 69 send_mail m3.yaml >out 2>err &&
	cat err &&
	grep -qi "certificate" err &&
	test "$(received "$SMTP_MD")" = "$before" &&
	test "$(msgs spool3/mail)" = 1
'

test_expect_success AIOSMTPD 'mail: implicit TLS (smtps) with AUTH' '
	stop_pid $SMTP_PID &&
	start_smtp tls &&
	cfg m4.yaml MTLS=tls SPOOL=$TRASH/spool4 &&
	send_mail m4.yaml >out 2>err &&
	test "$(received "$SMTP_MD")" = 1 &&
	check_mail "$(newest "$SMTP_MD")" --html "${ALL_ATT[@]}" &&
	grep -q "\"tls\": true, \"auth_user\": \"reporter\"" "$SMTP_LOG" &&
	test "$(msgs spool4/mail)" = 0
'

test_expect_success AIOSMTPD 'mail: tls starttls never falls back to clear text when the server offers no STARTTLS' '
	stop_pid $SMTP_PID &&
	start_smtp none &&
	cfg m4b.yaml SPOOL=$TRASH/spool4b &&
	test_exit_code 69 send_mail m4b.yaml >out 2>err &&
	cat err &&
	test "$(received "$SMTP_MD")" = 0 &&
	test ! -s "$SMTP_LOG.auth" &&
	test "$(msgs spool4b/mail)" = 1
'

test_expect_success AIOSMTPD 'mail: server down exits 69 and queues; a later run delivers once it is up' '
	stop_pid $SMTP_PID &&
	port=$(free_port) &&
	cfg m5.yaml MPORT=$port SPOOL=$TRASH/spool5 &&
	test_exit_code 69 send_mail m5.yaml >out 2>err &&
	test "$(msgs spool5/mail)" = 1 &&
	test_exit_code 69 "$DELIVER" retry -c m5.yaml --channel mail >out 2>err &&
	grep -q "^mail delivered=0 queued=1" out &&
	grep -q "^attempts: 2\$" spool5/mail/*.msg &&
	start_smtp starttls "$port" &&
	"$DELIVER" retry -c m5.yaml --channel mail >out 2>err &&
	grep -q "^mail delivered=1 queued=0" out &&
	check_mail "$(newest "$SMTP_MD")" --html "${ALL_ATT[@]}" &&
	test "$(msgs spool5/mail)" = 0
'

test_expect_success AIOSMTPD 'mail: a temporary 451 queues (69); a permanent 550 goes to dead/ (65) and is not retried' '
	printf "451 1\n" >smtp.fail &&
	stop_pid $SMTP_PID &&
	start_smtp starttls 0 --fail-file "$TRASH/smtp.fail" &&
	cfg m6.yaml SPOOL=$TRASH/spool6 &&
	test_exit_code 69 send_mail m6.yaml --key k451 >out 2>err &&
	grep -q "451" err &&
	test "$(msgs spool6/mail)" = 1 &&
	printf "550 1\n" >smtp.fail &&
	test_exit_code 65 send_mail m6.yaml --key k550 >out 2>err &&
	grep -q "result=dead" out &&
	test "$(dead spool6/mail)" = 1 &&
	test "$(msgs spool6/mail)" = 1 &&
	"$DELIVER" retry -c m6.yaml --channel mail >out 2>err &&
	grep -q "^mail delivered=1 queued=0 dead=0" out &&
	test "$(received "$SMTP_MD")" = 1 &&
	test "$(dead spool6/mail)" = 1 && test "$(msgs spool6/mail)" = 0
'

test_expect_success AIOSMTPD 'mail: a plain-text only message, ASCII names' '
	cfg m7.yaml SPOOL=$TRASH/spool7 &&
	"$DELIVER" mail -c m7.yaml --attach att/report.csv >out 2>err &&
	check_mail "$(newest "$SMTP_MD")" att/report.csv
'

test_expect_success 'mail: a missing attachment exits 66 and sends nothing; a bad recipient address 65' '
	cfg m8.yaml MPORT=9 SPOOL=$TRASH/spool8 &&
	test_exit_code 66 "$DELIVER" mail -c m8.yaml --attach no/such.pdf >out 2>err &&
	grep -q "no/such.pdf" err &&
	test "$(msgs spool8/mail)" = 0 &&
	sed "s/to: .*/to: \"ops@example.com, not an address\"/" m8.yaml >m8b.yaml &&
	test_exit_code 65 "$DELIVER" mail -c m8b.yaml --attach att/report.csv >out 2>err &&
	grep -q "bad address" err
'

# ------------------------------------------------------------ webhooks

printf '{"type":"report.ready","report":"daily","period":"2024-05-01","files":["report.pdf","report.csv"],"note":"Zürich ☎"}' >ev1.json
printf '{"type":"report.ready","report":"weekly","period":"2024-W18"}' >ev2.json
printf '{"type":"report.ready","report":"monthly","period":"2024-05"}' >ev3.json
sha() { sha256sum "$1" | cut -d" " -f1; }

test_expect_success 'webhook: a signed POST the receiver verifies; body byte for byte; stable idempotency key' '
	start_hook &&
	cfg w1.yaml SPOOL=$TRASH/wspool1 &&
	"$DELIVER" webhook -c w1.yaml --event-file ev1.json --key report-daily-2024-05-01 >out 2>err &&
	cat out err &&
	grep -q "result=delivered requests=1" out &&
	"$PYTHON" -c "import json,sys; d=[json.loads(l) for l in open(sys.argv[1])]; \
		assert len(d) == 1 and d[0][\"key\"] == \"report-daily-2024-05-01\" and d[0][\"status\"] == \"new\", d; \
		assert d[0][\"sha256\"] == sys.argv[2], d" "$HOOK_LOG" "$(sha ev1.json)" &&
	test "$(msgs wspool1/webhook)" = 0
'

test_expect_success 'webhook: the signature is HMAC-SHA256 over "<timestamp>.<body>" (recomputed with openssl)' '
	"$PYTHON" -c "import json,sys; d=json.loads(open(sys.argv[1]).readline()); print(d[\"ts\"], d[\"signature\"])" \
		"$HOOK_LOG" >sig &&
	read -r ts got <sig &&
	test "$ts" -gt 1700000000 &&
	{ printf "%s." "$ts"; cat ev1.json; } >signed &&
	want=$(openssl dgst -sha256 -hmac "$SECRET" -r <signed | cut -d" " -f1) &&
	echo "got $got want sha256=$want" &&
	test "$got" = "sha256=$want" &&
	{ printf "%s" "$ts"; cat ev1.json; } >unsigned &&
	test "$got" != "sha256=$(openssl dgst -sha256 -hmac "$SECRET" -r <unsigned | cut -d" " -f1)"
'

test_expect_success 'webhook: 500 twice, then 200: retried with backoff within the run, delivered once' '
	printf "500 2\n" >hook.fail &&
	: >"$HOOK_REQ" &&
	cfg w2.yaml SPOOL=$TRASH/wspool2 WMAX=4 WBMIN=200ms &&
	start=$(date +%s%N) &&
	"$DELIVER" webhook -c w2.yaml --event-file ev2.json >out 2>err &&
	ms=$((($(date +%s%N) - start) / 1000000)) &&
	cat out && echo "elapsed ${ms} ms" &&
	grep -q "result=delivered requests=3" out &&
	test "$(cut -d" " -f2 "$HOOK_REQ" | tr "\n" " ")" = "500 500 200 " &&
	test "$(cut -d" " -f1 "$HOOK_REQ" | sort -u | wc -l)" = 1 &&
	test "$ms" -ge 300 &&
	test "$(msgs wspool2/webhook)" = 0
'

test_expect_success 'webhook: 429 and 408 are retried; 400 is not (65, kept in dead/, never resent)' '
	printf "429 1\n" >hook.fail &&
	"$DELIVER" webhook -c w2.yaml --event "{\"n\":429}" >out 2>err &&
	grep -q "requests=2" out &&
	printf "408 1\n" >hook.fail &&
	"$DELIVER" webhook -c w2.yaml --event "{\"n\":408}" >out 2>err &&
	grep -q "requests=2" out &&
	printf "400 1\n" >hook.fail &&
	test_exit_code 65 "$DELIVER" webhook -c w2.yaml --event "{\"n\":400}" >out 2>err &&
	grep -q "result=dead requests=1" out &&
	test "$(dead wspool2/webhook)" = 1 &&
	test "$(msgs wspool2/webhook)" = 0 &&
	"$DELIVER" retry -c w2.yaml --channel webhook >out 2>err &&
	grep -q "^webhook delivered=0 queued=0 dead=0 corrupt=0 requests=0" out
'

test_expect_success 'webhook: failing more than max_attempts exits 69; the spool holds it; a later run delivers it' '
	printf "503 10\n" >hook.fail &&
	: >"$HOOK_REQ" &&
	cfg w3.yaml SPOOL=$TRASH/wspool3 WMAX=3 &&
	test_exit_code 69 "$DELIVER" webhook -c w3.yaml --event-file ev3.json --key monthly >out 2>err &&
	grep -q "result=queued requests=3" out &&
	test "$(wc -l <"$HOOK_REQ")" = 3 &&
	test "$(msgs wspool3/webhook)" = 1 &&
	f=$(ls wspool3/webhook/*.msg) &&
	head -1 "$f" >magic && echo "cdrflow-spool 1" >want && test_cmp want magic &&
	grep -q "^kind: webhook\$" "$f" && grep -q "^key: monthly\$" "$f" &&
	grep -q "^last-error: HTTP 503" "$f" &&
	sed "1,/^\$/d" "$f" >body && cmp body ev3.json &&
	: >hook.fail &&
	"$DELIVER" retry -c w3.yaml >out 2>err &&
	grep -q "^webhook delivered=1 queued=0" out &&
	test "$(msgs wspool3/webhook)" = 0 &&
	test "$(grep -c "\"key\": \"monthly\"" "$HOOK_LOG")" = 1 &&
	grep "\"key\": \"monthly\"" "$HOOK_LOG" | grep -q "$(sha ev3.json)"
'

test_expect_success 'webhook: receiver down: every event queued at once after one backoff series; retried oldest first' '
	port=$(free_port) &&
	cfg w4.yaml SPOOL=$TRASH/wspool4 URL=http://127.0.0.1:$port/hook &&
	test_exit_code 69 "$DELIVER" webhook -c w4.yaml --event-file ev1.json --key first >out 2>err &&
	test_exit_code 69 "$DELIVER" webhook -c w4.yaml --event-file ev2.json --key second >out 2>err &&
	test_exit_code 69 "$DELIVER" webhook -c w4.yaml --event-file ev3.json --key third >out 2>err &&
	test "$(msgs wspool4/webhook)" = 3 &&
	test_exit_code 69 "$DELIVER" retry -c w4.yaml --channel webhook >out 2>err &&
	cat out &&
	grep -q "^webhook delivered=0 queued=3 dead=0 corrupt=0 requests=3" out &&
	start_hook "$port" &&
	"$DELIVER" retry -c w4.yaml --channel webhook >out 2>err &&
	grep -q "^webhook delivered=3 queued=0" out &&
	test "$(sed -n "s/.*\"key\": \"\\([a-z]*\\)\".*/\\1/p" "$HOOK_LOG" | tr "\n" " ")" = "first second third " &&
	test "$(msgs wspool4/webhook)" = 0
'

test_expect_success 'webhook: a wrong secret is refused by the receiver (401): 77, queued, delivered once fixed' '
	cfg w5.yaml SPOOL=$TRASH/wspool5 WSECRET=$TRASH/hook.badsecret &&
	: >"$HOOK_REQ" &&
	test_exit_code 77 "$DELIVER" webhook -c w5.yaml --event-file ev2.json --key signed >out 2>err &&
	grep -q "401" err &&
	test "$(cat "$HOOK_REQ")" = "signed 401" &&
	test "$(msgs wspool5/webhook)" = 1 &&
	cfg w5.yaml SPOOL=$TRASH/wspool5 &&
	"$DELIVER" retry -c w5.yaml >out 2>err &&
	grep -q "^webhook delivered=1" out &&
	grep -q "\"key\": \"signed\", \"status\": \"new\"" "$HOOK_LOG"
'

test_expect_success 'webhook: the same event twice carries the same key; the receiver sees a duplicate' '
	cfg w6.yaml SPOOL=$TRASH/wspool6 &&
	"$DELIVER" webhook -c w6.yaml --event-file ev2.json >out1 2>err &&
	"$DELIVER" webhook -c w6.yaml --event-file ev2.json >out2 2>err &&
	k1=$(sed -n "s/.*key=\\([^ ]*\\).*/\\1/p" out1) && k2=$(sed -n "s/.*key=\\([^ ]*\\).*/\\1/p" out2) &&
	test -n "$k1" && test "$k1" = "$k2" &&
	test "$(grep -c "\"key\": \"$k1\", \"status\": \"duplicate\"" "$HOOK_LOG")" = 1
'

test_expect_success 'spool: a corrupt message is moved to dead/ (65), the others still go' '
	port=$(free_port) &&
	cfg w7.yaml SPOOL=$TRASH/wspool7 URL=http://127.0.0.1:$port/hook &&
	test_exit_code 69 "$DELIVER" webhook -c w7.yaml --event-file ev1.json --key a >out 2>err &&
	test_exit_code 69 "$DELIVER" webhook -c w7.yaml --event-file ev2.json --key b >out 2>err &&
	f=$(ls wspool7/webhook/*.msg | head -1) &&
	head -c 60 "$f" >cut && mv cut "$f" &&
	sed "s|url: .*|url: \"http://127.0.0.1:$HOOK_PORT/hook\"|" w7.yaml >w7b.yaml &&
	test_exit_code 65 "$DELIVER" retry -c w7b.yaml --channel webhook >out 2>err &&
	cat out err &&
	grep -q "^webhook delivered=1 queued=0 dead=0 corrupt=1" out &&
	grep -q "corrupt" err &&
	test "$(dead wspool7/webhook)" = 1 && test "$(msgs wspool7/webhook)" = 0
'

test_expect_success 'webhook: spool I/O error exits 74 (the event is reported lost, nothing claims success)' '
	port=$(free_port) &&
	mkdir ro && printf x >ro/webhook &&
	cfg w8.yaml SPOOL=$TRASH/ro URL=http://127.0.0.1:$port/hook &&
	test_exit_code 74 "$DELIVER" webhook -c w8.yaml --event-file ev1.json >out 2>err &&
	grep -q "result=lost" out &&
	grep -q "cannot queue" err
'

test_expect_success 'no secret in argv, output or logs; a missing secret is a config error (78)' '
	! grep -rqF -e "$PW" -e "$SECRET" --include="err*" --include="out*" . &&
	! grep -rqF -e "$PW" -e "$SECRET" spool* wspool* &&
	cfg w9.yaml WSECRET= &&
	test_exit_code 78 env -u CDRFLOW_WEBHOOK_SECRET "$DELIVER" webhook -c w9.yaml --event "{}" >out 2>err &&
	grep -q "CDRFLOW_WEBHOOK_SECRET" err &&
	CDRFLOW_WEBHOOK_SECRET=$SECRET "$DELIVER" webhook -c w9.yaml --event "{\"env\":1}" >out 2>err &&
	grep -q "result=delivered" out
'

# ------------------------------------------------------------ alerts

if test_have_prereq PG; then
	PGDIR=$(mktemp -d /tmp/cdrflow-t5100.XXXXXX)
	CDRFLOW_PGPORT=$(free_port)
	export CDRFLOW_PGPORT
	trap '"$TEST_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"; test_cleanup' EXIT
	if eval "$("$TEST_ROOT/scripts/pg.sh" start "$PGDIR")"; then
		test_set_prereq DB
	else
		echo "# cannot start PostgreSQL"
	fi
fi
# the shape of migration 0008's alert table (not on this branch)
ALERT_DDL="CREATE TABLE IF NOT EXISTS alert (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now(),
	rule text NOT NULL, tenant text, severity text NOT NULL, subject text NOT NULL, window_start timestamptz,
	window_end timestamptz, evidence jsonb, details jsonb, delivered_at timestamptz, delivery_attempts int NOT NULL DEFAULT 0)"
ins_alert() { psql -qAtc "INSERT INTO alert (rule, tenant, severity, subject, details) VALUES ('$1', '$2', 'high', '$3', '{\"calls\": $4}') RETURNING id"; }
q() { psql -qAtc "$1"; }

test_expect_success DB 'alerts: every undelivered alert is posted once with key alert-<id>, and marked delivered' '
	q "$ALERT_DDL" &&
	a1=$(ins_alert toll_fraud acme "Premium-rate burst" 17) &&
	a2=$(ins_alert short_calls acme "Wangiri pattern" 42) &&
	a3=$(ins_alert asr_drop bravo "ASR below 30 %" 120) &&
	cfg a1.yaml SPOOL=$TRASH/aspool &&
	: >"$HOOK_REQ" &&
	"$DELIVER" alerts -c a1.yaml >out 2>err &&
	cat out &&
	grep -q "^alerts delivered=3 queued=0" out &&
	test "$(q "select count(*) from alert where delivered_at is not null and delivery_attempts = 1")" = 3 &&
	"$PYTHON" -c "
import json, sys
d = {x[\"key\"]: json.loads(x[\"body\"]) for x in map(json.loads, open(sys.argv[1])) if x[\"key\"].startswith(\"alert-\")}
ids = sys.argv[2:]
assert sorted(d) == sorted(\"alert-\" + i for i in ids), d.keys()
b = d[\"alert-\" + ids[1]]
assert b[\"type\"] == \"alert\" and b[\"rule\"] == \"short_calls\" and b[\"tenant\"] == \"acme\", b
assert b[\"details\"] == {\"calls\": 42} and b[\"id\"] == int(ids[1]), b
assert \"delivered_at\" not in b and \"delivery_attempts\" not in b, b
" "$HOOK_LOG" "$a1" "$a2" "$a3" &&
	"$DELIVER" alerts -c a1.yaml >out 2>err &&
	grep -q "^alerts delivered=0 queued=0" out
'

test_expect_success DB 'alerts: receiver failing: alerts stay undelivered in the table and queued; the next run marks them' '
	a4=$(ins_alert toll_fraud acme "Burst 2" 5) &&
	a5=$(ins_alert toll_fraud acme "Burst 3" 6) &&
	printf "500 100\n" >hook.fail &&
	test_exit_code 69 "$DELIVER" alerts -c a1.yaml >out 2>err &&
	cat out &&
	grep -q "^alerts delivered=0 queued=2" out &&
	test "$(q "select count(*) from alert where delivered_at is null")" = 2 &&
	test "$(q "select delivery_attempts from alert where id = $a4")" = 3 &&
	test "$(msgs aspool/webhook)" = 2 &&
	test_exit_code 69 "$DELIVER" alerts -c a1.yaml >out 2>err &&
	grep -q "^alerts delivered=0 queued=0 already_queued=2 spool_delivered=0 spool_queued=2" out &&
	: >hook.fail &&
	"$DELIVER" alerts -c a1.yaml >out 2>err &&
	cat out &&
	grep -q "^alerts delivered=0 queued=0 already_queued=0 spool_delivered=2" out &&
	test "$(q "select count(*) from alert where delivered_at is null")" = 0 &&
	test "$(msgs aspool/webhook)" = 0 &&
	test "$(grep -c "\"key\": \"alert-$a4\"" "$HOOK_LOG")" = 1 &&
	test "$(grep -c "\"key\": \"alert-$a5\"" "$HOOK_LOG")" = 1
'

test_expect_success DB 'alerts: a row locked by another run is skipped (FOR UPDATE SKIP LOCKED), not waited for' '
	a6=$(ins_alert asr_drop bravo "locked" 1) &&
	a7=$(ins_alert asr_drop bravo "free" 2) || return 1
	psql -qAtc "BEGIN; SELECT id FROM alert WHERE id = $a6 FOR UPDATE; SELECT pg_sleep(4); COMMIT" >/dev/null 2>&1 &
	locker=$! &&
	register_pid $locker &&
	wait_for "test \"\$(q \"select count(*) from pg_locks l join pg_class c on c.oid = l.relation where c.relname = '"'"'alert'"'"' and l.mode = '"'"'RowShareLock'"'"'\")\" -ge 1" 10 &&
	start=$(date +%s) &&
	"$DELIVER" alerts -c a1.yaml >out 2>err &&
	cat out &&
	test $(($(date +%s) - start)) -lt 3 &&
	grep -q "^alerts delivered=1 queued=0" out &&
	test -n "$(q "select delivered_at from alert where id = $a7")" &&
	test -z "$(q "select delivered_at from alert where id = $a6")" &&
	wait $locker;
	"$DELIVER" alerts -c a1.yaml >out 2>err &&
	grep -q "^alerts delivered=1 queued=0" out &&
	test -n "$(q "select delivered_at from alert where id = $a6")"
'

test_done
