#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='cdrflow-report --deliver, retry, alerts: a real report of s07 mailed over STARTTLS+AUTH (aiosmtpd) and announced to a signed webhook; the outbox when SMTP is down; the alert table of a real ETL run drained once'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
REPORT=$CDRFLOW_BUILD/cdrflow-report
[ -x "$ETL" ] || bail_out "no $ETL (run make)"
[ -x "$REPORT" ] || bail_out "no $REPORT (run make)"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || skip_all "PostgreSQL server binaries are not installed"
command -v openssl >/dev/null 2>&1 || bail_out "openssl is not installed"
capture_path s07_trunk_tenant >/dev/null || bail_out "captures not found"
S07=$(dirname "$(capture_path s07_trunk_tenant)")
D=$TEST_ROOT/tests/delivery
# aiosmtpd from Debian (python3-aiosmtpd): the system python3 has it
SMTP_PY=
for p in /usr/bin/python3 "$PYTHON"; do
	if "$p" -c 'import aiosmtpd' 2>/dev/null; then SMTP_PY=$p; break; fi
done
[ -n "$SMTP_PY" ] || skip_all "python3-aiosmtpd is not installed (scripts/install-deps.sh)"

PGDIR=$(mktemp -d /tmp/cdrflow-t5400.XXXXXX)
export CDRFLOW_PGPORT=$(free_port)
trap '"$TEST_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"; test_cleanup' EXIT
eval "$("$TEST_ROOT/scripts/pg.sh" start "$PGDIR")" || bail_out "cannot start PostgreSQL"
"$ETL" migrate >/dev/null || bail_out "migrate failed"
q() { psql -X -Atc "$1"; }

# ------------------------------------------------------------ fixtures
openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 2 -subj /CN=localhost \
	-addext "subjectAltName=IP:127.0.0.1,DNS:localhost" >/dev/null 2>&1 || bail_out "openssl req failed"
PW='pw-Eiph7ahz-never-logged'
printf '%s\n' "$PW" >smtp.pw
printf 'wrong-password\n' >smtp.badpw
SECRET='whsec-Oob3ieYo-never-logged'
printf '%s\n' "$SECRET" >hook.secret

# The ETL: s07 as the captures need it, and the fraud hot list of t4300
# (the premium ranges s07's tenants dial).
cat >etl.yaml <<'YAML'
cdr:
  unanswered: yes
  congestion: yes
  endbeforehexten: no
fraud:
  outbound_contexts: [internal]
  inbound_contexts: [did]
  rules:
    - name: hot
      kind: hotlist
      prefixes: ["+882", "00881", "239"]
YAML

# From the capture's own cdr.csv: the E.164 numbers the tenants dialled
# (context internal) in the hot ranges: the subjects the alerts must have.
cat >hot-expect.py <<'PY'
import csv, sys
hot = set()
for row in csv.reader(open(sys.argv[1])):
    dst, ctx = row[2], row[3]
    if ctx != "internal":
        continue
    e164 = "+" + dst[2:] if dst.startswith("00") else dst if dst.startswith("+") else None
    if e164 and e164[1:].startswith(("882", "881", "239")):
        hot.add(e164)
print("\n".join(sorted(hot)))
PY

# check-event.py HOOKLOG KEY FILE...: the accepted report.ready event with
# Idempotency-Key KEY describes exactly FILE... (name, format, size, sha256),
# carries no file contents, and its KPIs include Legs = $LEGS.
cat >check-event.py <<'PY'
import hashlib, json, os, sys
log, key, files = sys.argv[1], sys.argv[2], sys.argv[3:]
evs = [json.loads(l) for l in open(log)]
mine = [e for e in evs if e["key"] == key]
assert len(mine) >= 1, "no event with key %s in %s" % (key, [e["key"] for e in evs])
body = json.loads(mine[0]["body"])
assert body["type"] == "report.ready" and body["template"] == "daily-traffic", body
assert body["key"] == key, body
assert body["title"] == "Daily traffic summary", body
got = body["files"]
assert [f["name"] for f in got] == [os.path.basename(p) for p in files], (got, files)
for f, p in zip(got, files):
    data = open(p, "rb").read()
    assert set(f) == {"name", "path", "format", "section", "size", "sha256"}, f
    assert f["size"] == len(data), (f, len(data))
    assert f["sha256"] == hashlib.sha256(data).hexdigest(), f
    assert f["format"] == os.path.splitext(p)[1][1:], f
    assert f["path"] == p, f
assert len(mine[0]["body"]) < 8192, "the event is %d bytes: file contents?" % len(mine[0]["body"])
kpis = {(k["section"], k["label"]): k["value"] for k in body["kpis"]}
assert kpis[("Totals", "Legs")] == os.environ["LEGS"], kpis
print("event %s: %d files, %d bytes" % (key, len(got), len(mine[0]["body"])))
PY

# mail-body.py MESSAGE: the text body of a received message
cat >mail-body.py <<'PY'
import email, email.policy, sys
m = email.message_from_bytes(open(sys.argv[1], "rb").read(), policy=email.policy.default)
print(m.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n"))
print("=====HTML=====")
print(m.get_body(preferencelist=("html",)).get_content().replace("\r\n", "\n"))
PY

# check-alerts.py HOOKLOG IDS...: every alert id posted exactly once, with
# key alert-<id> and its row as the body
cat >check-alerts.py <<'PY'
import json, sys
log, ids = sys.argv[1], sys.argv[2:]
posts = [json.loads(l) for l in open(log)]
posts = [p for p in posts if p["key"].startswith("alert-")]
keys = [p["key"] for p in posts]
assert sorted(keys) == sorted("alert-" + i for i in ids), (keys, ids)
assert all(p["status"] == "new" for p in posts), posts
for p in posts:
    b = json.loads(p["body"])
    assert b["type"] == "alert" and "alert-%d" % b["id"] == p["key"], b
    assert b["rule"] == "hot" and "delivered_at" not in b, b
    print(b["subject"])
PY

mkdir bad
printf '%s\n' "title: T" "delivery:" "  recipients: [a@example.com]" "  webhook: https://evil.example/x" \
	"sections:" "  - type: table" "    title: T" "    sql: SELECT 1 AS one" >bad/url.yaml
printf '%s\n' "title: T" "delivery:" "  subject: nothing to send" \
	"sections:" "  - type: table" "    title: T" "    sql: SELECT 1 AS one" >bad/none.yaml

_srv=0
# start_smtp [PORT] [extra args]: STARTTLS required, AUTH user reporter; sets SMTP_PORT SMTP_PID SMTP_LOG SMTP_MD
start_smtp() {
	local port=${1:-0} pf
	shift 2>/dev/null
	_srv=$((_srv + 1))
	pf=$TRASH/smtp.port.$_srv
	SMTP_MD=$TRASH/maildir.$_srv SMTP_LOG=$TRASH/smtp.log.$_srv
	"$SMTP_PY" "$D/smtp_server.py" --port "$port" --port-file "$pf" --maildir "$SMTP_MD" --log "$SMTP_LOG" \
		--mode starttls --cert "$TRASH/cert.pem" --key "$TRASH/key.pem" --user reporter \
		--password-file "$TRASH/smtp.pw" "$@" >"$TRASH/smtp.err.$_srv" 2>&1 &
	SMTP_PID=$!
	register_pid $SMTP_PID
	wait_for "test -s '$pf' || ! kill -0 $SMTP_PID" 30 && test -s "$pf" || {
		cat "$TRASH/smtp.err.$_srv"
		return 1
	}
	SMTP_PORT=$(cat "$pf")
}
# start_hook [PORT]: the signature-checking receiver; sets HOOK_PORT HOOK_PID HOOK_LOG
start_hook() {
	local port=${1:-0} pf
	_srv=$((_srv + 1))
	pf=$TRASH/hook.port.$_srv
	HOOK_LOG=$TRASH/hook.log
	"$PYTHON" "$D/webhook_receiver.py" --port "$port" --port-file "$pf" --secret-file "$TRASH/hook.secret" \
		--log "$HOOK_LOG" --fail-file "$TRASH/hook.fail" >"$TRASH/hook.err.$_srv" 2>&1 &
	HOOK_PID=$!
	register_pid $HOOK_PID
	wait_for "test -s '$pf' || ! kill -0 $HOOK_PID" 30 && test -s "$pf" || {
		cat "$TRASH/hook.err.$_srv"
		return 1
	}
	HOOK_PORT=$(cat "$pf")
}
stop_pid() { kill -TERM "$1" 2>/dev/null; wait "$1" 2>/dev/null; return 0; }

# cfg FILE [VAR=value...]: cdrflow-report's configuration; VARs: MPORT MPWFILE URL WSECRET SPOOL
cfg() {
	local f=$1 kv
	shift
	local MPORT=${SMTP_PORT:-25} MPWFILE=$TRASH/smtp.pw URL=http://127.0.0.1:${HOOK_PORT:-9}/hook
	local WSECRET=$TRASH/hook.secret SPOOL=$TRASH/spool
	for kv in "$@"; do printf -v "${kv%%=*}" '%s' "${kv#*=}"; done
	cat etl.yaml >"$f"
	printf '%s\n' "report:" "  templates_dir: \"$TEST_ROOT/templates\"" "  out_dir: reports" "  tz: UTC" \
		"  delivery:" "    spool: \"$SPOOL\"" "    mail:" "      host: 127.0.0.1" "      port: $MPORT" \
		"      tls: starttls" "      tls_ca_file: \"$TRASH/cert.pem\"" "      username: reporter" \
		"      password_file: \"$MPWFILE\"" "      from: \"cdrflow Reports <reports@example.com>\"" \
		"      timeout: 20s" "      connect_timeout: 2s" \
		"    webhook:" "      url: \"$URL\"" "      secret_file: \"$WSECRET\"" "      max_attempts: 2" \
		"      backoff_min: 50ms" "      backoff_max: 200ms" "      timeout: 5s" "      connect_timeout: 1s" >>"$f"
}
msgs() { find "$1" -maxdepth 1 -name '*.msg' 2>/dev/null | wc -l; }
received() { find "$1/new" -type f 2>/dev/null | wc -l; }
newest() { ls -t "$1"/new/* | head -1; }
sha() { sha256sum "$1" | cut -d" " -f1; }
hook_keys() { "$PYTHON" -c "import json,sys; [print(json.loads(l)[\"key\"], json.loads(l)[\"status\"]) for l in open(sys.argv[1])]" "$HOOK_LOG"; }

# ------------------------------------------------------------ the data

test_expect_success 's07 through the real ETL with a hot-list rule: legs, and alerts for the hot numbers of cdr.csv' '
	cdrflow_collector --replay "$(capture_path s07_trunk_tenant)" --spool espool --node s07 >/dev/null &&
	"$ETL" --once -c etl.yaml --spool espool >load.out 2>load.err &&
	test "$(q "select count(*) from cdr")" -gt 10 &&
	DAY=$(q "select min(calldate)::date from cdr") &&
	test "$DAY" = "$(q "select max(calldate)::date from cdr")" &&
	echo "$DAY" >day &&
	"$PYTHON" hot-expect.py "$S07/cdr.csv" >hot.expect &&
	test -s hot.expect &&
	q "select distinct subject from alert where rule = '"'"'hot'"'"' order by 1" >hot.got &&
	test_cmp hot.expect hot.got &&
	test "$(q "select count(*) from alert where delivered_at is not null")" = 0
'
DAY=$(cat day 2>/dev/null)
# the KPI the mail and the event must show (test 1 checked every leg is on $DAY)
export LEGS=$(q "select count(*) from cdr" 2>/dev/null)
SUBJECT="Daily traffic $DAY (UTC)"

# ------------------------------------------------------------ --deliver

test_expect_success '--deliver: STARTTLS + AUTH mail with PDF, XLSX and every CSV byte-identical to the files written' '
	start_smtp && start_hook &&
	cfg r.yaml &&
	"$REPORT" -c r.yaml run daily-traffic --from "$DAY" --deliver >paths 2>err &&
	cat paths err &&
	test "$(wc -l <paths)" = 6 &&
	grep -q "\.pdf\$" paths && grep -q "\.xlsx\$" paths && test "$(grep -c "\.csv\$" paths)" = 4 &&
	test "$(received "$SMTP_MD")" = 1 &&
	mapfile -t FILES <paths &&
	"$PYTHON" "$D/check_mail.py" "$(newest "$SMTP_MD")" --subject "$SUBJECT" --to noc@example.invalid \
		--html "${FILES[@]}" >chk &&
	cat chk && test_line_count chk = 6 &&
	"$PYTHON" -c "import json,sys; d=json.loads(open(sys.argv[1]).readline()); \
		assert d[\"tls\"] is True and d[\"auth_user\"] == \"reporter\", d; \
		assert d[\"mail_from\"] == \"reports@example.com\" and d[\"rcpt_tos\"] == [\"noc@example.invalid\"], d" \
		"$SMTP_LOG" &&
	test "$(msgs spool/mail)" = 0 && test "$(msgs spool/webhook)" = 0
'

test_expect_success '--deliver: the mail body names the period, the KPI figures (Legs = SQL) and each file with its size' '
	"$PYTHON" mail-body.py "$(newest "$SMTP_MD")" >body &&
	cat body &&
	grep -q "^Period: $DAY (UTC)\$" body &&
	grep -q "^  Legs: $LEGS\$" body &&
	while read -r f; do
		grep -q "^  $(basename "$f")  .*$(stat -c %s "$f") bytes" body || return 1
	done <paths &&
	sed -n "/=====HTML=====/,\$p" body | grep -q "<td align=\"right\"><b>$LEGS</b></td>"
'

test_expect_success '--deliver: a signed report.ready event: names, formats, sizes and sha256 of the files, no contents' '
	test "$(wc -l <"$HOOK_LOG")" = 1 &&
	KEY=$(hook_keys | cut -d" " -f1) &&
	echo "$KEY" >key1 &&
	echo "$KEY" | grep -Eq "^report-daily-traffic-[0-9a-f]{32}\$" &&
	test "$(hook_keys | cut -d" " -f2)" = new &&
	"$PYTHON" check-event.py "$HOOK_LOG" "$KEY" "${FILES[@]}" &&
	"$PYTHON" -c "import json,sys; d=json.loads(open(sys.argv[1]).readline()); open(\"ev.body\", \"w\").write(d[\"body\"]); print(d[\"ts\"], d[\"signature\"])" \
		"$HOOK_LOG" >sig &&
	read -r ts got <sig &&
	{ printf "%s." "$ts"; cat ev.body; } >signed &&
	test "$got" = "sha256=$(openssl dgst -sha256 -hmac "$SECRET" -r <signed | cut -d" " -f1)"
'

test_expect_success 'the idempotency key is stable for (template, period, formats, params) and differs otherwise' '
	"$REPORT" -c r.yaml run daily-traffic --from "$DAY" --deliver -o outb >/dev/null 2>err &&
	test "$(hook_keys | sed -n 2p)" = "$(cat key1) duplicate" &&
	"$REPORT" -c r.yaml run daily-traffic --from "$DAY" --deliver -o outc -f pdf >/dev/null 2>err &&
	"$REPORT" -c r.yaml run daily-traffic --from "$DAY" --deliver -o outd --param tenant=tenantA >/dev/null 2>err &&
	"$REPORT" -c r.yaml run daily-traffic --from "$DAY" --to "$DAY 12:00" --deliver -o oute >/dev/null 2>err &&
	hook_keys >keys &&
	cat keys &&
	test "$(sed -n "3,5p" keys | cut -d" " -f2 | sort -u)" = new &&
	test "$(cut -d" " -f1 keys | sort -u | wc -l)" = 4 &&
	test "$(received "$SMTP_MD")" = 5
'

test_expect_success '--recipients replaces the template'"'"'s; tenant-billing sends only its formats (PDF, XLSX)' '
	"$REPORT" -c r.yaml run tenant-billing --from "$DAY" --deliver -o outf \
		--recipients "Acme AP <ap@acme.example>, b@acme.example" >fpaths 2>err &&
	test "$(received "$SMTP_MD")" = 6 &&
	"$PYTHON" "$D/check_mail.py" "$(newest "$SMTP_MD")" --subject "Tenant billing statement $DAY (UTC)" \
		--to ap@acme.example,b@acme.example --html $(grep -v "\.csv\$" fpaths) &&
	test "$(grep -c "\.csv\$" fpaths)" -gt 0 &&
	test "$(wc -l <"$HOOK_LOG")" = 5
'

test_expect_success 'SMTP down: exit 69, the mail waits in the outbox, the files stay; a second run does not queue it twice' '
	stop_pid $SMTP_PID &&
	echo "$SMTP_PORT" >smtp.port &&
	test_exit_code 69 "$REPORT" -c r.yaml run daily-traffic --from "$DAY" --deliver -o out2 >paths2 2>err2 &&
	cat err2 &&
	grep -q "queued" err2 &&
	test "$(wc -l <paths2)" = 6 &&
	while read -r f; do test -s "$f" || return 1; done <paths2 &&
	for f in out2/*; do sha "$f"; done >out2.sha &&
	test "$(msgs spool/mail)" = 1 &&
	grep -q "^meta: reports@example.com noc@example.invalid\$" spool/mail/*.msg &&
	grep -q "^key: report-daily-traffic-[0-9a-f]*\$" spool/mail/*.msg &&
	test_exit_code 69 "$REPORT" -c r.yaml run daily-traffic --from "$DAY" --deliver -o out3 >/dev/null 2>err3 &&
	grep -q "already queued" err3 &&
	test "$(msgs spool/mail)" = 1
'

test_expect_success 'retry once SMTP is back: the queued mail is delivered once, with the files of the run that queued it' '
	start_smtp "$(cat smtp.port)" &&
	"$REPORT" -c r.yaml retry >out 2>err &&
	cat out err &&
	grep -q "^mail delivered=1 queued=0 dead=0 corrupt=0\$" out &&
	test "$(received "$SMTP_MD")" = 1 &&
	mapfile -t F2 <paths2 &&
	"$PYTHON" "$D/check_mail.py" "$(newest "$SMTP_MD")" --subject "$SUBJECT" --to noc@example.invalid \
		--html "${F2[@]}" &&
	for f in out2/*; do sha "$f"; done >out2.sha.after &&
	test_cmp out2.sha out2.sha.after &&
	test "$(msgs spool/mail)" = 0 &&
	"$REPORT" -c r.yaml retry >out 2>err &&
	grep -q "^mail delivered=0 queued=0" out &&
	test "$(received "$SMTP_MD")" = 1
'

test_expect_success 'a refused login exits 77 (queued); a message the server rejects exits 65 (dead/)' '
	cfg bad.yaml MPWFILE=$TRASH/smtp.badpw SPOOL=$TRASH/spool77 &&
	test_exit_code 77 "$REPORT" -c bad.yaml run daily-traffic --from "$DAY" --deliver -o out77 >/dev/null 2>err &&
	test "$(msgs spool77/mail)" = 1 && test -s out77/daily-traffic-$DAY-$DAY.pdf &&
	cfg r77.yaml SPOOL=$TRASH/spool77 &&
	"$REPORT" -c r77.yaml retry >out 2>err &&
	grep -q "^mail delivered=1" out &&
	stop_pid $SMTP_PID &&
	printf "550 1\n" >smtp.fail &&
	start_smtp "$(cat smtp.port)" --fail-file "$TRASH/smtp.fail" &&
	cfg r65.yaml SPOOL=$TRASH/spool65 &&
	test_exit_code 65 "$REPORT" -c r65.yaml run daily-traffic --from "$DAY" --deliver -o out65 >/dev/null 2>err &&
	test "$(find spool65/mail/dead -name "*.msg" | wc -l)" = 1 && test "$(msgs spool65/mail)" = 0
'

test_expect_success 'delivery set-up errors fail before the report is built (78); bad options 64' '
	cfg nohook.yaml URL= &&
	test_exit_code 78 "$REPORT" -c nohook.yaml run daily-traffic --from "$DAY" --deliver -o out78 >/dev/null 2>err &&
	grep -q "report.delivery.webhook.url" err &&
	test ! -e out78 &&
	cfg nosecret.yaml WSECRET= &&
	test_exit_code 78 env -u CDRFLOW_WEBHOOK_SECRET "$REPORT" -c nosecret.yaml run daily-traffic --from "$DAY" \
		--deliver -o out78 >/dev/null 2>err &&
	grep -q "CDRFLOW_WEBHOOK_SECRET" err &&
	test ! -e out78 &&
	test_exit_code 64 "$REPORT" -c r.yaml run daily-traffic --from "$DAY" --recipients a@b.example >/dev/null 2>&1 &&
	test_exit_code 64 "$REPORT" -c r.yaml run daily-traffic --from "$DAY" --deliver --recipients "not an address" \
		-o out78 >/dev/null 2>&1 &&
	test_exit_code 64 "$REPORT" -c r.yaml retry extra >/dev/null 2>&1 &&
	test_exit_code 64 "$REPORT" -c r.yaml alerts --limit x >/dev/null 2>&1 &&
	"$REPORT" --help >help && grep -q "^       cdrflow-report retry" help && grep -q "^  alerts  " help &&
	test_exit_code 65 "$REPORT" -c r.yaml run bad/url.yaml --deliver -o out78 >/dev/null 2>err &&
	grep -q "url.yaml:4:12: delivery.webhook is yes or no" err &&
	test_exit_code 65 "$REPORT" -c r.yaml run bad/none.yaml --deliver -o out78 >/dev/null 2>err &&
	grep -q "neither mail" err &&
	test ! -e out78
'

# ------------------------------------------------------------ alerts

test_expect_success 'alerts --limit 1 posts the oldest alert only' '
	"$REPORT" -c r.yaml alerts --limit 1 >out 2>err &&
	cat out &&
	grep -q "^alerts delivered=1 queued=0" out &&
	test "$(q "select id from alert where delivered_at is not null")" = "$(q "select min(id) from alert")"
'

test_expect_success 'alerts: every alert of the ETL run posted once with key alert-<id> and marked delivered; a second run posts nothing' '
	n=$(q "select count(*) from alert") &&
	"$REPORT" -c r.yaml alerts >out 2>err &&
	cat out &&
	grep -q "^alerts delivered=$((n - 1)) queued=0" out &&
	test "$(q "select count(*) from alert where delivered_at is null")" = 0 &&
	"$PYTHON" check-alerts.py "$HOOK_LOG" $(q "select id from alert order by id") | sort -u >posted &&
	test_cmp hot.expect posted &&
	cp "$HOOK_LOG" hook.after1 &&
	"$REPORT" -c r.yaml alerts >out 2>err &&
	grep -q "^alerts delivered=0 queued=0 already_queued=0" out &&
	test_cmp hook.after1 "$HOOK_LOG"
'

test_expect_success 'alerts: receiver down: queued (69), rows stay undelivered; retry delivers and marks them' '
	q "update alert set delivered_at = null, delivery_attempts = 0 where id = (select max(id) from alert)" &&
	id=$(q "select max(id) from alert") &&
	stop_pid $HOOK_PID &&
	test_exit_code 69 "$REPORT" -c r.yaml alerts >out 2>err &&
	grep -q "^alerts delivered=0 queued=1" out &&
	test "$(msgs spool/webhook)" = 1 &&
	test -z "$(q "select delivered_at from alert where id = $id")" &&
	start_hook "$HOOK_PORT" &&
	"$REPORT" -c r.yaml retry >out 2>err &&
	cat out &&
	grep -q "^webhook delivered=1 queued=0" out &&
	test -n "$(q "select delivered_at from alert where id = $id")" &&
	test "$(msgs spool/webhook)" = 0 &&
	test "$(grep -c "\"key\": \"alert-$id\", \"status\": \"duplicate\"" "$HOOK_LOG")" = 1
'

test_expect_success 'no secret in any output, log, spool file or received message' '
	test -d spool && test -d spool77 && test -d spool65 && test -s "$HOOK_LOG" &&
	! grep -rqF -e "$PW" -e "$SECRET" --include="err*" --include="out*" --include="paths*" . &&
	! grep -rqF -e "$PW" -e "$SECRET" spool spool77 spool65 &&
	! grep -rqaF -e "$PW" -e "$SECRET" maildir.* &&
	! grep -qF -e "$PW" -e "$SECRET" "$HOOK_LOG"
'

test_done
