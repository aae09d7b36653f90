#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='Yeastar PBX: OpenAPI WebSocket and webhook into the spool, byte for byte, then into legs exactly once'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
SIM=$TEST_ROOT/tests/yeastar_sim.py
[ -x "$ETL" ] || bail_out "no $ETL (run make)"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || bail_out "PostgreSQL server binaries are not installed (scripts/install-deps.sh)"
"$PYTHON" -c 'import json, hmac, http.client' || bail_out "python3 is not installed (scripts/install-deps.sh)"
start_private_pg
"$ETL" migrate >/dev/null || bail_out "migrate failed"
q() { psql -Atc "$1"; }

cd "$TRASH" || bail_out "no $TRASH"
API_PORT=$(free_port)
HOOK_PORT=$(free_port)
CHECK_PORT=$(free_port)
S_API_PORT=$(free_port)
S_HOOK_PORT=$(free_port)
# the Client Secret and the webhook Secret, from the environment only
export YS_SECRET=ZLcXl63S9EtMnYoHUnjbVo6sA8CbXXXX YEASTAR_SIM_SECRET=ZLcXl63S9EtMnYoHUnjbVo6sA8CbXXXX
export YS_HOOK_SECRET=0123456789abcdefghijklmnopqrstuv
cat >buy.csv <<'EOF'
prefix,description,rate_per_min,connect_fee,increment,grace,effective_from,effective_to
49,Germany,0.010,,60/1,,2020-01-01,
EOF
cat >sell.csv <<'EOF'
prefix,description,rate_per_min,connect_fee,increment,grace,effective_from,effective_to
49,Germany,0.030,,60/60,,2020-01-01,
EOF
cat >cdrflow.yaml <<EOF
spool: $TRASH/spool
collector:
  fsync: always
sources:
  - name: ys-ws
    type: yeastar
    yeastar:
      api_url: http://127.0.0.1:$API_PORT/openapi/v1.0
      client_id: UEnH9Dmv6uBJEXsYcag1trNfQThYXXXX
      secret_env: YS_SECRET
      topics: "30007,30008,30011,30012"
      heartbeat_interval: 1s
      heartbeat_timeout: 4s
      reconnect_min: 100ms
      reconnect_max: 1s
  - name: ys-hook
    type: yeastar
    yeastar:
      transport: webhook
      listen: 127.0.0.1:$HOOK_PORT
      webhook_path: /yeastar
      webhook_secret_env: YS_HOOK_SECRET
      utc_offset: "+08:00"
  - name: ys-s
    type: yeastar
    yeastar:
      transport: webhook
      s_series_login: true
      api_url: http://127.0.0.1:$S_API_PORT/api/v2.0.0
      client_id: api
      secret_env: YS_SECRET
      listen: 127.0.0.1:$S_HOOK_PORT
      webhook_path: /report
      push_url: 127.0.0.1:$S_HOOK_PORT/report
      heartbeat_interval: 1s
tenants:
  rules:
    - tenant: acme
      did: "44207123*"
    - tenant: beta
      channel: "Yeastar/ext/200?"
numbering:
  - country_code: "44"
    national_prefix: "0"
    international_prefix: "00"
rating:
  buy:
    - carrier: carrier-out
      deck: $TRASH/buy.csv
      trunk: "Yeastar/trunk/Carrier Out"
  sell:
    - tenant: beta
      deck: $TRASH/sell.csv
EOF

# expected legs of the events a scenario delivered, mapped from the published
# format independently of the C code: uniqueid disposition billsec duration
# direction trunk src dst calldate(UTC) accountcode
cat >expect.py <<'EOF'
import json, sys, time, calendar
off = int(sys.argv[2]) if len(sys.argv) > 2 else 0
for line in open(sys.argv[1]):
    raw = json.loads(line.split(" ", 1)[1])
    ev = json.loads(raw)
    if ev.get("type") == 30012:
        try:
            m = json.loads(ev["msg"])
        except ValueError:
            continue
        g = lambda k: m.get(k, "")
        cid, start, frm, to = g("call_id"), g("time_start"), g("call_from"), g("call_to")
        cd, td, st, ty = int(g("call_duration")), int(g("talk_duration")), g("status"), g("type").lower()
        st_, dt, did, pin = g("src_trunk_name"), g("dst_trunk_name"), g("did_number"), g("pin_code")
    elif ev.get("event") == "NewCdr":
        g = lambda k: ev.get(k, "")
        cid, start, frm, to = g("callid"), g("timestart"), g("callfrom"), g("callto")
        cd, td, st, ty = int(g("callduraction")), int(g("talkduraction")), g("status"), g("type").lower()
        st_, dt, did, pin = g("srctrunkname"), g("dsttrcunkname"), g("didnumber"), g("pincode")
    else:
        continue
    disp = {"ANSWERD": "ANSWERED", "ANSWERED": "ANSWERED", "VOICEMAIL": "ANSWERED", "NO ANSWER": "NO ANSWER",
            "BUSY": "BUSY"}[st]
    bill = td if disp == "ANSWERED" else 0
    trunk = st_ if ty == "inbound" else dt
    dst = did if ty == "inbound" and did else to
    t = calendar.timegm(time.strptime(start.replace("/", "-"), "%Y-%m-%d %H:%M:%S")) - off
    print("|".join([cid, disp, str(bill), str(max(cd, bill)), ty, trunk, frm, dst,
                    time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)), pin]))
EOF
legs_of() { # NODE
	q "select uniqueid, disposition, billsec, duration, direction, trunk, src, dst,
	          to_char(calldate at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'), accountcode
	   from cdr where node = '$1' order by 1"
}
stat_of() { "$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

test_expect_success 'the collector takes every event of the WebSocket session, across token expiry and a cut' '
	"$PYTHON" "$SIM" --scenario s-series --port $S_API_PORT --client-id api --token-ttl 3 \
		--out s.expected --stats s.stats --ready s.ready 2>sim-s.err &
	ssim=$! && register_pid $ssim && echo $ssim >s.pid &&
	wait_for "test -e s.ready" 10 &&
	"$PYTHON" "$SIM" --scenario websocket --port $API_PORT --token-ttl 4 --idle-timeout 3 --reject-refresh 2 \
		--burst 200 --out ws.expected --stats ws.stats --ready ws.ready 2>sim-ws.err &
	sim=$! && register_pid $sim &&
	wait_for "test -e ws.ready" 10 &&
	start_collector cdrflow.yaml &&
	wait $sim &&
	test -s ws.expected
'

test_expect_success 'the webhook transport: POSTs signed with the secret are stored, the rest refused' '
	"$PYTHON" "$SIM" --scenario webhook --target 127.0.0.1:$HOOK_PORT --webhook-path /yeastar \
		--webhook-secret "$YS_HOOK_SECRET" --burst 30 --out hook.expected --stats hook.stats 2>sim-hook.err &&
	grep -q "refused a POST whose X-Signature does not match" "$COLLECTOR_ERR" &&
	stop_collector && test "$COLLECTOR_RC" = 0
'

test_expect_success 'S-Series: the collector logs in, keeps the token alive, stores the pushed NewCdr' '
	wait_for "test -s s.expected" 60 &&
	test "$(stat_of s.stats gets)" = 1 &&
	test "$(stat_of s.stats heartbeats)" -ge 3 &&
	test "$(stat_of s.stats refused)" = 0 &&
	grep -q "node ys-s: logged in to the S-Series API" "$COLLECTOR_ERR"
'

test_expect_success 'the simulator saw heartbeats, token renewals, a refused refresh, expiry and reconnects' '
	test "$(stat_of ws.stats idle_closes)" = 0 &&
	test "$(stat_of ws.stats heartbeats)" -ge 5 &&
	test "$(stat_of ws.stats refreshes)" -ge 3 &&
	test "$(stat_of ws.stats gets)" -ge 2 &&
	test "$(stat_of ws.stats expiry_closes)" -ge 1 &&
	test "$(stat_of ws.stats sessions)" -ge 3 &&
	grep -q "the PBX closed the WebSocket" "$COLLECTOR_ERR" &&
	grep -q "node ys-ws: dropped a message of 12[0-9]* bytes (collector.max_event_size is 1048576)" "$COLLECTOR_ERR" &&
	grep -q "node ys-ws: not stored: a message of 18 bytes that is not a JSON event" "$COLLECTOR_ERR" &&
	! grep -q "$YS_SECRET" "$COLLECTOR_ERR" &&
	! grep -q "access_token=" "$COLLECTOR_ERR"
'

test_expect_success 'every event is in the segments byte for byte, once, in order; nothing else is' '
	verify_ok spool &&
	awk "{print \$1}" ws.expected >want.ws && stored_sha1s spool ys-ws >got.ws && test_cmp want.ws got.ws &&
	awk "{print \$1}" hook.expected >want.hook && stored_sha1s spool ys-hook >got.hook && test_cmp want.hook got.hook &&
	awk "{print \$1}" s.expected >want.s && stored_sha1s spool ys-s >got.s && test_cmp want.s got.s &&
	test "$(wc -l <want.ws)" -ge 240 &&
	cdrflow_collector --list --spool spool --node ys-ws | awk "{print \$8}" | sort | uniq -c >names &&
	grep -q " YeastarNewCdr$" names && grep -q " YeastarExtensionCallStatus$" names &&
	grep -q " YeastarCallStatus$" names && grep -q " YeastarExtensionRegistration$" names
'

test_expect_success 'the raw JSON of a record is exactly what the PBX sent (spaces, newlines, escaped msg)' '
	cdrflow_collector --dump --spool spool --node ys-ws >dump.ws &&
	"$PYTHON" -c "
import json, sys
want = b\"\".join(json.loads(l.split(\" \", 1)[1]).encode() for l in open(\"ws.expected\"))
got = open(\"dump.ws\", \"rb\").read()
sys.exit(0 if want == got else 1)" &&
	grep -q "^    \"msg\": \"{" dump.ws
'

test_expect_success 'the ETL makes each CDR a leg: disposition, durations, direction, trunk, DID, time' '
	"$ETL" --once -c cdrflow.yaml >out 2>err &&
	grep -q "is not a Yeastar event: event 30012: msg is not a JSON object" err &&
	"$PYTHON" expect.py ws.expected | sort >want.legs.ws && legs_of ys-ws >got.legs.ws &&
	test_cmp want.legs.ws got.legs.ws &&
	"$PYTHON" expect.py hook.expected 28800 | sort >want.legs.hook && legs_of ys-hook >got.legs.hook &&
	test_cmp want.legs.hook got.legs.hook &&
	"$PYTHON" expect.py s.expected | sort >want.legs.s && legs_of ys-s >got.legs.s &&
	test_cmp want.legs.s got.legs.s && test "$(wc -l <got.legs.s)" = 20 &&
	test "$(wc -l <got.legs.ws)" -ge 230
'

test_expect_success 'legs are not duplicated across the cut and the token expiry; one call per CDR' '
	test "$(q "select count(*) - count(distinct (node, uniqueid)) from cdr")" = 0 &&
	test "$(q "select count(*) from call")" = "$(q "select count(*) from cdr")" &&
	test "$(q "select count(*) from cdr where call_id is null")" = 0 &&
	test "$(q "select count(*) from call c join cdr l using (call_id, node) where c.direction <> l.direction
	           or c.outcome <> case l.disposition when '"'"'ANSWERED'"'"' then '"'"'answered'"'"'
	           when '"'"'BUSY'"'"' then '"'"'busy'"'"' when '"'"'NO ANSWER'"'"' then '"'"'no_answer'"'"' end")" = 0
'

test_expect_success 'the S-Series NewCdr push with its misspelled fields' '
	test "$(q "select disposition || '"'"' '"'"' || billsec || '"'"' '"'"' || duration || '"'"' '"'"' || direction
	           from cdr where uniqueid = '"'"'1571897930.5'"'"'")" = "ANSWERED 14 19 internal" &&
	test "$(q "select trunk || '"'"' '"'"' || accountcode || '"'"' '"'"' || dst_e164 from cdr where uniqueid = '"'"'1571897931.6'"'"'")" = \
		"S-Carrier 7788 +49301234999" &&
	test "$(q "select disposition || '"'"' '"'"' || dst || '"'"' '"'"' || tenant from cdr where uniqueid = '"'"'1571897932.7'"'"'")" = \
		"NO ANSWER 442071234567 acme"
'

test_expect_success 'tenants, E.164, country and rating come from the same code as AMI legs' '
	test "$(q "select count(*) from cdr where direction = '"'"'inbound'"'"'")" -gt 20 &&
	test "$(q "select count(*) from cdr where direction = '"'"'inbound'"'"' and tenant is distinct from '"'"'acme'"'"'")" = 0 &&
	test "$(q "select count(*) from cdr where direction <> '"'"'inbound'"'"' and tenant is distinct from
	           case when src ~ '"'"'^200[0-9]$'"'"' or dst ~ '"'"'^200[0-9]$'"'"' then '"'"'beta'"'"' end")" = 0 &&
	test "$(q "select count(*) from cdr where tenant = '"'"'beta'"'"'")" -gt 10 &&
	test "$(q "select count(*) from cdr where node = '"'"'ys-ws'"'"' and direction = '"'"'outbound'"'"' and disposition = '"'"'ANSWERED'"'"'
	           and tenant = '"'"'beta'"'"' and (rate_status <> '"'"'rated'"'"' or carrier <> '"'"'carrier-out'"'"'
	                or dst_country <> '"'"'DE'"'"' or margin <= 0 or buy_prefix <> '"'"'49'"'"')")" = 0 &&
	test "$(q "select count(*) from cdr where node = '"'"'ys-ws'"'"' and direction = '"'"'outbound'"'"' and rate_status = '"'"'rated'"'"'")" -gt 5 &&
	test "$(q "select count(*) from cdr where direction = '"'"'outbound'"'"' and tenant is null and billsec > 0
	           and rate_status <> '"'"'no_sell_rate'"'"'")" = 0 &&
	test "$(q "select count(*) from cdr where direction = '"'"'inbound'"'"' and src_e164 like '"'"'+44207946%'"'"'")" -gt 20 &&
	test "$(q "select count(*) from call where node = '"'"'ys-ws'"'"' and direction = '"'"'outbound'"'"' and trunk = '"'"'Carrier Out'"'"'")" -gt 20 &&
	test "$(q "select sum(legs) from rollup_daily where tenant = '"'"'beta'"'"'")" = "$(q "select count(*) from cdr where tenant = '"'"'beta'"'"'")" &&
	test "$(q "select sum(billsec) from rollup_daily where tenant = '"'"'acme'"'"'")" = \
		"$(q "select sum(billsec) from cdr where tenant = '"'"'acme'"'"' and disposition = '"'"'ANSWERED'"'"'")"
'

test_expect_success 'extension status history and the call in progress' '
	test "$(q "select string_agg(state, '"'"','"'"' order by eventtime, seq) from endpoint_state_history
	           where node = '"'"'ys-ws'"'"' and kind = '"'"'extension'"'"' and endpoint = '"'"'Yeastar/2002'"'"'")" = "Ringing,Busy,Idle" &&
	test "$(q "select reachable || '"'"' '"'"' || detail from endpoint_state_history where kind = '"'"'registration'"'"' and endpoint = '"'"'Yeastar/2010'"'"'")" = "true Sip" &&
	test "$(q "select call_id || '"'"' '"'"' || jsonb_array_length(members) from yeastar_live_call where node = '"'"'ys-ws'"'"'")" = "1651057476.999 2" &&
	test "$(q "select count(*) from ami_event where node = '"'"'ys-hook'"'"' and event = '"'"'YeastarExtensionCallStatus'"'"'")" = 1
'

test_expect_success 'a second --once loads nothing' '
	before=$(q "select count(*) || '"'"' '"'"' || (select count(*) from call) || '"'"' '"'"' || (select count(*) from ami_event) from cdr") &&
	"$ETL" --once -c cdrflow.yaml >out2 2>err2 &&
	grep -q "^etl: events=0 " out2 &&
	test "$(q "select count(*) || '"'"' '"'"' || (select count(*) from call) || '"'"' '"'"' || (select count(*) from ami_event) from cdr")" = "$before"
'

test_expect_success 'doctor: the AMI input checks do not apply to a Yeastar node' '
	"$ETL" doctor -c cdrflow.yaml >doctor.out &&
	grep -q "^node ys-ws: [0-9]* JSON records of a Yeastar source: the AMI checks do not apply" doctor.out &&
	grep -q "^node ys-hook: [0-9]* JSON records of a Yeastar source" doctor.out &&
	test "$(q "select count(*) from input_caveat where node like '"'"'ys-%'"'"'")" = 0
'

test_expect_success '--check: token and subscription accepted; a wrong Client Secret exits 77' '
	"$PYTHON" "$SIM" --scenario serve --port $CHECK_PORT --out serve.expected --stats serve.stats --ready serve.ready 2>sim-serve.err &
	register_pid $! &&
	wait_for "test -e serve.ready" 10 &&
	printf "spool: %s\nsources:\n  - name: ys-check\n    type: yeastar\n    yeastar:\n      api_url: http://127.0.0.1:%s/openapi/v1.0\n      client_id: UEnH9Dmv6uBJEXsYcag1trNfQThYXXXX\n      secret_env: YS_SECRET\n" \
		"$TRASH/spool-check" $CHECK_PORT >check.yaml &&
	cdrflow_collector -c check.yaml --check >check.out 2>check.err &&
	grep -q "^node ys-check: ok (yeastar, token and subscription accepted)" check.out &&
	test_exit_code 77 env YS_SECRET=wrong "$CDRFLOW_COLLECTOR" -c check.yaml --check >check2.out 2>check2.err &&
	grep -q "get_token refused: errcode 20004" check2.out &&
	! grep -q wrong check2.out check2.err
'

test_expect_success 'a bad sources: item is refused with its key named' '
	printf "sources:\n  - name: x\n    type: yeastar\n    yeastar:\n      api_url: ftp://pbx\n      client_id: a\n" >bad.yaml &&
	test_exit_code 78 cdrflow_collector -c bad.yaml --dump-config 2>bad.err &&
	grep -q "sources\[0\].yeastar.api_url" bad.err &&
	printf "sources:\n  - name: x\n    type: asterisk\n" >bad2.yaml &&
	test_exit_code 78 "$ETL" --once -c bad2.yaml 2>bad2.err &&
	grep -q "type" bad2.err
'

test_done
