#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='doctor: degraded AMI inputs are diagnosed per node, warned once, kept with the data and reported'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
REPORT=$CDRFLOW_BUILD/cdrflow-report
QUERY=$CDRFLOW_BUILD/cdrflow-query
[ -x "$ETL" ] || bail_out "no $ETL (run make)"
capture_path s01_answered >/dev/null || bail_out "captures not found"
CAPS=$CDRFLOW_SHARED/captures
STRIP=$TEST_ROOT/tests/truth/strip-cdr.py

# every shared capture, Event: Cdr kept (the doctor's self-check uses it)
CAPTURES=$(cd "$CAPS" && ls -d s0* v* a22* testsuite/*/ | sed 's,/$,,')
name() { echo "$1" | tr / _; }
raw() { if [ -f "$CAPS/$1/ami.raw" ]; then echo "$CAPS/$1/ami.raw"; else echo "$CAPS/$1/ami.raw.xz"; fi; }
# cdr: settings from the capture's README ("cdr.conf [general] in effect: ...")
cdr_yaml() {
	conf=$(grep -o 'cdr.conf \[general\] in effect: [^.]*' "$CAPS/$1/README.md" | sed 's/.*in effect: //')
	[ -z "$conf" ] && conf="unanswered=yes, congestion=yes, endbeforehexten=no"
	echo "cdr:"
	# only the keys every cdrflow-etl knows: the doctor does not depend on the others
	echo "$conf" | tr ',' '\n' | sed 's/^ *//' | grep '^\(unanswered\|congestion\|endbeforehexten\|initiatedseconds\)=' |
		sed 's/=\(.*\)/: \1/;s/^/  /'
	echo "$conf" | grep -q endbeforehexten || echo "  endbeforehexten: no"
}
# the status column of one input in a doctor report: FILE INPUT-NAME
status_of() {
	awk -v n="$2" 'substr($0, 1, 2) == "  " { k = substr($0, 3, 34); sub(/ +$/, "", k)
		if (k == n) { split(substr($0, 38), a, " "); print (a[1] == "not") ? "not seen" : a[1]; exit } }' "$1"
}

test_expect_success 'doctor: no spool is 66, an extra argument 64, an empty spool 0' '
	test_exit_code 66 "$ETL" doctor --spool "$TRASH/none" >out 2>err &&
	grep -q "cannot read spool" err &&
	test_exit_code 64 "$ETL" doctor extra >out 2>err &&
	mkdir empty && "$ETL" doctor --spool empty >out &&
	grep -q "no nodes" out
'

test_expect_success 'every shared capture replays into its own spool (v1, with no clock, is refused)' '
	for c in $CAPTURES; do
		n=$(name $c) &&
		cdr_yaml $c >$n.yaml || return 1
		case $c in
		v1_*) test_exit_code 65 cdrflow_collector --replay "$(raw $c)" --spool sp-$n --node $n 2>$n.err &&
			cdrflow_collector --verify --spool sp-$n | grep -q "^records=0 " || return 1 ;;
		*) cdrflow_collector --replay "$(raw $c)" --spool sp-$n --node $n >/dev/null || return 1 ;;
		esac
	done
'

test_expect_success 'lab captures s01-s08 and a22: nothing that changes the rows is missing (exit 0)' '
	for c in $CAPTURES; do
		case $c in s0*|a22*) ;; *) continue ;; esac
		n=$(name $c)
		"$ETL" doctor -c $n.yaml --spool sp-$n >$n.doc 2>$n.err; rc=$?
		say "$c: exit $rc" &&
		test $rc = 0 && test ! -s $n.err &&
		grep -q "^node $n: " $n.doc &&
		grep -q "verdict: every input cdrflow relies on is present" $n.doc &&
		! grep -q MISSING $n.doc || { cat $n.doc; return 1; }
	done
'

test_expect_success 'doctor names each input, says present, and the restore line' '
	f=s01_answered.doc &&
	for i in "Timestamp header" Newexten VarSet "ChanVariable header (channelvars)" "DialBegin, DialEnd" \
		 "BridgeEnter, BridgeLeave" CEL "CEL event types" OriginateResponse "RTCPSent, RTCPReceived" \
		 "Cdr (cdr_manager)"; do
		grep -qF "  $i " $f || { echo "no line for $i"; return 1; }
	done &&
	test "$(status_of $f Newexten)" = present &&
	test "$(status_of $f "Timestamp header")" = present &&
	grep -q "event classes received (Privilege): system,call,cdr,dialplan,security" $f &&
	grep -q "CEL event types: CHAN_START=24 " $f
'

test_expect_success 'no activity is "not seen", never "disabled": s01 has no queue call, no SIP RTP' '
	test "$(status_of s01_answered.doc "QueueCallerJoin, AgentCalled, ...")" = "not seen" &&
	test "$(status_of s01_answered.doc "RTCPSent, RTCPReceived")" = "not seen" &&
	grep -F "QueueCallerJoin, AgentCalled, ..." s01_answered.doc | grep -q "no queue call seen" &&
	test "$(status_of s04_queue.doc "QueueCallerJoin, AgentCalled, ...")" = present &&
	test "$(status_of s03_sip_rtp.doc "RTCPSent, RTCPReceived")" = present
'

test_expect_success 'self-check against Event: Cdr: the lab captures agree with Asterisk (rows never built from it)' '
	for n in s01_answered s02_unanswered s04_queue s05_transfer s06_fork s07_trunk_tenant; do
		grep -q "self-check against Event: Cdr.* 0 only Asterisk.s, 0 only rebuilt$" $n.doc ||
			{ grep self-check $n.doc; return 1; }
	done &&
	"$STRIP" "$(raw s01_answered)" s01-nocdr.raw &&
	cdrflow_collector --replay s01-nocdr.raw --spool sp-nocdr --node nocdr >/dev/null &&
	"$ETL" doctor -c s01_answered.yaml --spool sp-nocdr >nocdr.doc &&
	! grep -q "self-check against" nocdr.doc &&
	test "$(status_of nocdr.doc "Cdr (cdr_manager)")" = "not seen"
'


test_expect_success 'v1 live spool (the collector'"'"'s receive times): Timestamp missing, not a replay' '
	mkdir live && tar -C live -xJf "$CAPS/v1_timestampevents_no/spool.tar.xz" &&
	test_exit_code 79 "$ETL" doctor -c v1_timestampevents_no.yaml --spool live/spool >v1live.doc &&
	test "$(status_of v1live.doc "Timestamp header")" = MISSING &&
	grep -q "restore: manager.conf \[general\]: timestampevents = yes" v1live.doc &&
	! grep -q "receive times are over a minute from the PBX" v1live.doc
'

test_expect_success 'v2 (disabledevents = Newexten,VarSet): both named by their AMI names, with proof (exit 79)' '
	test_exit_code 79 "$ETL" doctor -c v2_disabledevents.yaml --spool sp-v2_disabledevents >v2.doc &&
	test "$(status_of v2.doc Newexten)" = MISSING &&
	test "$(status_of v2.doc VarSet)" = MISSING &&
	grep -F "  Newexten " v2.doc | grep -q "channels ran dialplan ([1-9][0-9]* channel events at priority >= 2" &&
	grep -q "lost: CDR lastapp, lastdata and userfield" v2.doc &&
	grep -q "restore: manager.conf \[general\]: remove Newexten from disabledevents" v2.doc &&
	test "$(grep -c " MISSING  " v2.doc)" = 2 &&
	grep -q "self-check against Event: Cdr: 741 Asterisk rows" v2.doc ||
	grep -q "self-check against Event: Cdr (.*): 741 Asterisk rows" v2.doc
'

test_expect_success 'v3 (no channelvars): ChanVariable missing, the rows unaffected (exit 0)' '
	test_exit_code 0 "$ETL" doctor -c v3_no_channelvars.yaml --spool sp-v3_no_channelvars >v3.doc &&
	test "$(status_of v3.doc "ChanVariable header (channelvars)")" = MISSING &&
	grep -A1 -F "  ChanVariable header (channelvars) " v3.doc | grep -q "affects: analytics only" &&
	grep -q "restore: manager.conf \[general\]: channelvars = " v3.doc &&
	test "$(grep -c " MISSING  " v3.doc)" = 1
'

test_expect_success 'v4 (CEL off): CEL missing, its types not judged (exit 79)' '
	test_exit_code 79 "$ETL" doctor -c v4_cel_disabled.yaml --spool sp-v4_cel_disabled >v4.doc &&
	test "$(status_of v4.doc CEL)" = MISSING &&
	test "$(status_of v4.doc "CEL event types")" = "not seen" &&
	grep -q "restore: cel.conf \[general\]: enable = yes" v4.doc &&
	test "$(grep -c " MISSING  " v4.doc)" = 1
'

test_expect_success 'testsuite captures (recorded without channelvars): exactly that is missing' '
	for c in $CAPTURES; do
		case $c in testsuite/*) ;; *) continue ;; esac
		n=$(name $c)
		"$ETL" doctor -c $n.yaml --spool sp-$n >$n.doc; rc=$?
		test $rc = 0 &&
		test "$(status_of $n.doc "ChanVariable header (channelvars)")" = MISSING &&
		test "$(grep -c " MISSING  " $n.doc)" = 1 || { cat $n.doc; return 1; }
	done
'

test_expect_success 'a channel that never left priority 1 does not prove Newexten disabled' '
	{
		printf "Asterisk Call Manager/9.0.0\r\n"
		for e in Newchannel Hangup; do
			printf "Event: %s\r\nPrivilege: call,all\r\nTimestamp: 1795288510.000001\r\nChannel: SIP/a-1\r\n" $e
			printf "Uniqueid: 1795288510.1\r\nLinkedid: 1795288510.1\r\nContext: in\r\nExten: s\r\nPriority: 1\r\n"
			printf "ChanVariable: TENANT=\r\n\r\n"
		done
	} >short.raw &&
	cdrflow_collector --replay short.raw --spool sp-short --node short >/dev/null &&
	"$ETL" doctor --spool sp-short >short.doc &&
	test "$(status_of short.doc Newexten)" = "not seen" &&
	test "$(status_of short.doc VarSet)" = "not seen" &&
	test "$(status_of short.doc "Timestamp header")" = present &&
	test "$(status_of short.doc CEL)" = "not seen"
'
test_expect_success 'a spool that ends right after a DialEnd proves nothing yet; the first 5 s of v2 prove Newexten only' '
	printf "Asterisk Call Manager/9.0.0\r\nEvent: DialEnd\r\nPrivilege: call,all\r\nTimestamp: 1796535900.000001\r\nChannel: SIP/a-1\r\nUniqueid: x1\r\nDialStatus: BUSY\r\nChanVariable: TENANT=\r\n\r\n" >dialend.raw &&
	cdrflow_collector --replay dialend.raw --spool sp-dialend --node d >/dev/null &&
	"$ETL" doctor --spool sp-dialend >dialend.doc &&
	test "$(status_of dialend.doc VarSet)" = "not seen" &&
	grep -F "  VarSet " dialend.doc | grep -q "too early to tell" &&
	"$STRIP" "$(raw v2_disabledevents)" v2cut 40 &&
	cdrflow_collector --replay v2cut.1 --spool sp-cut --node cut >/dev/null &&
	test_exit_code 79 "$ETL" doctor --spool sp-cut >cut.doc &&
	grep "^node cut" cut.doc &&
	test "$(status_of cut.doc Newexten)" = MISSING &&
	test "$(status_of cut.doc VarSet)" = "not seen" &&
	grep -F "  VarSet " cut.doc | grep -q "no variable change was seen (no Dial, no Set)"
'

test_expect_success 'RTCP filtered out of s03 (long SIP calls): missing, analytics only, exit 0' '
	"$PYTHON" -c "import re, sys; d = open(sys.argv[1], \"rb\").read(); sys.stdout.buffer.write(b\"\".join(p for p in re.split(rb\"(?<=\r\n\r\n)\", d) if not p.startswith(b\"Event: RTCP\")))" \
		"$(raw s03_sip_rtp)" >nortcp.raw &&
	! grep -q "^Event: RTCP" nortcp.raw &&
	cdrflow_collector --replay nortcp.raw --spool sp-nortcp --node nortcp >/dev/null &&
	"$ETL" doctor -c s03_sip_rtp.yaml --spool sp-nortcp >nortcp.doc &&
	test "$(status_of nortcp.doc "RTCPSent, RTCPReceived")" = MISSING &&
	grep -A1 -F "  RTCPSent, RTCPReceived " nortcp.doc | grep -q "affects: analytics only" &&
	grep -q "verdict: rows unaffected; some analytics inputs missing" nortcp.doc
'

test_expect_success 'cdr-csv warns once per node, the rows on stdout unchanged' '
	mkdir both && cp -r sp-v2_disabledevents/v2_disabledevents sp-s01_answered/s01_answered both/ &&
	"$ETL" cdr-csv -c s01_answered.yaml --spool both >both.csv 2>both.err &&
	test "$(grep -c "warning: node v2_disabledevents: Newexten not received" both.err)" = 1 &&
	test "$(grep -c "warning: node v2_disabledevents: VarSet not received" both.err)" = 1 &&
	! grep -q "warning: node s01_answered" both.err &&
	"$ETL" cdr-csv -c s01_answered.yaml --spool sp-s01_answered >s01.csv 2>/dev/null &&
	grep -c . s01.csv >n && test "$(cat n)" = 18
'

# ---------------------------------------------------------------- cdrflow-collector --check over AMI
export CDRFLOW_AMI_SECRET=secret

test_expect_success 'collector --check: banner, Timestamp, channelvars, disabledevents, read classes, CEL' '
	start_fake_ami --capture "$(raw v2_disabledevents)" --disabledevents Newexten,VarSet --read-perm system,call,cdr &&
	write_config chk.yaml port=$FAKE_PORT &&
	timeout -s KILL 20 "$CDRFLOW_COLLECTOR" -c chk.yaml --check >chk.out 2>chk.err &&
	cat chk.out &&
	grep -q "^node pbx1: ok (127.0.0.1:$FAKE_PORT, AMI 9.0.0)" chk.out &&
	grep -q "^node pbx1: banner \"Asterisk Call Manager/9.0.0\"" chk.out &&
	grep -q "^node pbx1: events during the check: \([1-9][0-9]*\), \1 with a Timestamp header; classes seen: .*call" chk.out &&
	grep -q "^node pbx1: timestampevents: Yes$" chk.out &&
	grep -q "^node pbx1: channelvars: CALLTAG,TENANT$" chk.out &&
	grep -q "^node pbx1: disabledevents: Newexten,VarSet  warning: cdrflow needs these events" chk.out &&
	grep -q "^node pbx1: read classes of the user: system,call,cdr  warning: missing dialplan,agent,reporting" chk.out &&
	grep -q "^node pbx1: CEL: Enabled, events CHAN_START," chk.out &&
	stop_fake_ami
'

test_expect_success 'collector --check: timestampevents = no, no channelvars, CEL off, each with its fix' '
	start_fake_ami --capture "$(raw v1_timestampevents_no)" &&
	write_config chk1.yaml port=$FAKE_PORT &&
	timeout -s KILL 20 "$CDRFLOW_COLLECTOR" -c chk1.yaml --check >chk1.out 2>chk1.err &&
	grep -q "^node pbx1: timestampevents: No  warning: .*timestampevents = yes" chk1.out &&
	grep -q "^node pbx1: events during the check: [1-9][0-9]*, 0 with a Timestamp header" chk1.out &&
	stop_fake_ami &&
	start_fake_ami --capture "$(raw v3_no_channelvars)" &&
	write_config chk3.yaml port=$FAKE_PORT &&
	timeout -s KILL 20 "$CDRFLOW_COLLECTOR" -c chk3.yaml --check >chk3.out 2>chk3.err &&
	grep -q "^node pbx1: channelvars: (none)  warning: .*channelvars = " chk3.out &&
	stop_fake_ami &&
	start_fake_ami --capture "$(raw v4_cel_disabled)" &&
	write_config chk4.yaml port=$FAKE_PORT &&
	timeout -s KILL 20 "$CDRFLOW_COLLECTOR" -c chk4.yaml --check >chk4.out 2>chk4.err &&
	grep -q "^node pbx1: CEL: Disabled  warning: .*cel.conf" chk4.out &&
	stop_fake_ami
'

test_expect_success 'collector --check: a user without write=command is told so, the check still passes' '
	start_fake_ami --capture "$(raw s01_answered)" --no-command &&
	write_config chkn.yaml port=$FAKE_PORT &&
	timeout -s KILL 20 "$CDRFLOW_COLLECTOR" -c chkn.yaml --check >chkn.out 2>chkn.err &&
	grep -q "^node pbx1: ok " chkn.out &&
	grep -q "^node pbx1: manager show settings: refused (the AMI user lacks write=command); run cdrflow-etl doctor" chkn.out &&
	stop_fake_ami
'

if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then test_set_prereq PG; fi
if test_have_prereq PG; then
	PGDIR=$(mktemp -d /tmp/cdrflow-t2500.XXXXXX)
	export CDRFLOW_PGPORT=$(free_port)
	test_at_exit '"$TEST_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"'
	eval "$("$TEST_ROOT/scripts/pg.sh" start "$PGDIR")" || bail_out "cannot start PostgreSQL"
	"$ETL" migrate >/dev/null || bail_out "migrate failed"
fi
q() { psql -Atc "$1"; }
v4_rows() { q "select count(*) from input_caveat where node = 'v4'"; }
v4_end() { q "select extract(epoch from period_end) from input_caveat where node = 'v4'"; }
v4_grew() { test "$(q "select extract(epoch from period_end) > $1 from input_caveat where node = 'v4'")" = t; }
printf 'cdr:\n  unanswered: yes\n  congestion: yes\n  endbeforehexten: no\netl:\n  batch_events: 500\n' >small.yaml

test_expect_success PG '--once: the warnings once per node and run (many batches), the caveats kept per node and period' '
	mkdir load && cp -r sp-v2_disabledevents/v2_disabledevents sp-s01_answered/s01_answered load/ &&
	"$ETL" --once -c small.yaml --spool load >once.out 2>once.err &&
	test "$(grep -c "warning: node v2_disabledevents: Newexten not received" once.err)" = 1 &&
	test "$(grep -c "warning: node v2_disabledevents: VarSet not received" once.err)" = 1 &&
	test "$(grep -c "warning: node v2_disabledevents:" once.err)" = 2 &&
	! grep -q "warning: node s01_answered" once.err &&
	test "$(q "select string_agg(input, \",\" order by input) from input_caveat where node = '"'"'v2_disabledevents'"'"'")" = newexten,varset &&
	test "$(q "select count(*) from input_caveat where node = '"'"'s01_answered'"'"'")" = 0 &&
	q "select caveat from input_caveat where input = '"'"'newexten'"'"'" | grep -q "unknown for node v2_disabledevents: Newexten not received" &&
	test "$(q "select period_start = to_timestamp(1796535903) and period_end >= to_timestamp(1796536116) from input_caveat where input = '"'"'newexten'"'"'")" = t ||
	q "select * from input_caveat"
'

test_expect_success PG 'a second --once (nothing new) says nothing and adds no caveat' '
	"$ETL" --once -c small.yaml --spool load >again.out 2>again.err &&
	! grep -q "warning: node" again.err &&
	test "$(q "select count(*) from input_caveat")" = 2
'

test_expect_success PG '--follow: one warning per node and run while the spool grows; one caveat row extended' '
	"$STRIP" "$(raw v4_cel_disabled)" v4piece 2 &&
	cdrflow_collector --replay v4piece.1 --spool follow --node v4 >/dev/null &&
	printf "etl:\n  poll_interval: 200ms\n" >follow.yaml || return 1
	"$ETL" --follow -c follow.yaml --spool follow >follow.out 2>follow.err &
	pid=$! && register_pid $pid &&
	wait_for "test \"\$(v4_rows)\" = 1" 30 &&
	p1=$(v4_end) &&
	cdrflow_collector --replay v4piece.2 --spool follow --node v4 >/dev/null &&
	wait_for "v4_grew $p1" 30 &&
	kill -TERM $pid && { wait $pid; rc=$?; echo "follow exit $rc"; test $rc = 0; } &&
	test "$(grep -c "warning: node v4: CEL not received" follow.err)" = 1 &&
	test "$(v4_rows)" = 1
'

test_expect_success PG 'the report of a period with a caveat prints it (stderr and the caveats section)' '
	cat >report.yaml <<-YAML &&
	report:
	  templates_dir: $TEST_ROOT/templates
	  out_dir: out
	  tz: UTC
	YAML
	"$REPORT" -c report.yaml run daily-traffic --from 2026-12-06 -f csv -o rep >rep.paths 2>rep.err &&
	grep -q "warning: caveat: node v2_disabledevents, .*: lastapp, lastdata, userfield and the rows after Dial unknown for node v2_disabledevents: Newexten not received \[CDR rows affected\]" rep.err &&
	grep -q "^\"v2_disabledevents\",\"Newexten\",\"lastapp, lastdata, userfield and the rows after Dial\",\"2026-12-06 05:45 .. 05:48\"" rep/daily-traffic-2026-12-06-2026-12-06-caveats.csv &&
	"$REPORT" -c report.yaml run daily-traffic --from 2026-11-21 -f csv -o rep2 >/dev/null 2>rep2.err &&
	! grep -q "warning: caveat" rep2.err
'

test_expect_success PG 'cdrflow query prints the caveats of its period' '
	"$QUERY" calls --from 2026-12-06 --to 2026-12-07 --tz UTC >qc.out 2>qc.err &&
	grep -q "warning: caveat: node v2_disabledevents, .*Newexten not received" qc.err &&
	"$QUERY" calls --from 2026-11-21 --to 2026-11-22 --tz UTC >/dev/null 2>qc2.err &&
	! grep -q "warning: caveat" qc2.err
'

# the doctor reads the load's own parse: what it keeps must be what committed
cav_of() { q "select input, affects_rows, period_start, period_end, evidence from input_caveat where node = '$1' order by input"; }
seg_of() { printf '%s/%016d.seg' "$1" "$2"; }

test_expect_success PG 'a load stopped by an error mid-spool: its caveats are those of the committed records loaded alone' '
	mkdir sperr && cp -r sp-v2_disabledevents/v2_disabledevents sperr/v2err &&
	q "create function t2500_fail() returns trigger language plpgsql as \$\$ begin
		if new.node = '"'"'v2err'"'"' and new.seq > 8000 then raise exception '"'"'t2500: refused'"'"'; end if;
		return new; end \$\$" >/dev/null &&
	q "create trigger t2500_fail before insert on cel for each row execute function t2500_fail()" >/dev/null &&
	{ "$ETL" --once -c small.yaml --spool sperr >err.out 2>err.err; rc=$?; } &&
	q "drop trigger t2500_fail on cel" >/dev/null &&
	say "exit $rc" && test $rc != 0 && grep -q "t2500: refused" err.err &&
	seg=$(q "select segno from etl_checkpoint where node = '"'"'v2err'"'"'") &&
	off=$(q "select seg_offset from etl_checkpoint where node = '"'"'v2err'"'"'") &&
	test "$(q "select last_seq from etl_checkpoint where node = '"'"'v2err'"'"'")" -le 8000 &&
	test "$(q "select last_seq from etl_checkpoint where node = '"'"'v2err'"'"'")" -gt 5000 &&
	mkdir alone && cp -r sperr/v2err alone/v2cut &&
	for f in alone/v2cut/*.seg; do
		n=$(basename $f .seg); n=$((10#$n))
		if [ $n -gt $seg ]; then rm $f; elif [ $n = $seg ]; then truncate -s $off $f; fi
	done &&
	"$ETL" --once -c small.yaml --spool alone >alone.out 2>alone.err &&
	test "$(q "select last_seq from etl_checkpoint where node = '"'"'v2cut'"'"'")" = \
	     "$(q "select last_seq from etl_checkpoint where node = '"'"'v2err'"'"'")" &&
	cav_of v2err >err.cav && cav_of v2cut >alone.cav &&
	cat err.cav && test "$(grep -c . err.cav)" = 2 && test_cmp alone.cav err.cav &&
	grep "warning: node v2err:" err.err | sed "s/v2err/NODE/g; s/^[^:]*: //" >err.warn &&
	grep "warning: node v2cut:" alone.err | sed "s/v2cut/NODE/g; s/^[^:]*: //" >alone.warn &&
	test "$(grep -c . err.warn)" = 2 && test_cmp alone.warn err.warn
'

test_expect_success PG 'records past a recorded skip are diagnosed with the rest: the caveat covers them' '
	mkdir skipsp && cp -r sp-v2_disabledevents/v2_disabledevents skipsp/v2skip &&
	printf "\377" | dd of=$(seg_of skipsp/v2skip 1) bs=1 seek=3000 conv=notrunc 2>/dev/null &&
	test_exit_code 65 "$ETL" --once -c small.yaml --spool skipsp >skip1.out 2>skip1.err &&
	test "$(q "select count(*) from input_caveat where node = '"'"'v2skip'"'"'")" = 0 &&
	off=$(sed -n "s/.*0000000000000001\.seg: offset \([0-9]*\): CRC.*/\1/p" skip1.err | head -1) &&
	"$ETL" skip --node v2skip --segment 1 --offset $off --spool skipsp >/dev/null 2>&1 &&
	"$ETL" --once -c small.yaml --spool skipsp >skip2.out 2>skip2.err &&
	! grep "doctor:" skip2.err &&
	test "$(grep -c "warning: node v2skip: \(Newexten\|VarSet\) not received" skip2.err)" = 2 &&
	test "$(q "select string_agg(input, '"'"','"'"' order by input) from input_caveat where node = '"'"'v2skip'"'"'")" = newexten,varset &&
	test "$(q "select count(*) from input_caveat v, input_caveat s where v.node = '"'"'v2_disabledevents'"'"'
		and s.node = '"'"'v2skip'"'"' and s.input = v.input and s.period_end = v.period_end")" = 2
'

# A loader killed with -9 after batches committed, before it stored their
# caveats (they are stored after the load, in their own transaction).  The
# fault: every row written to a table waits inside its transaction, long
# enough to kill the loader there.
cav_end() { q "select caveat_segno || ' ' || caveat_offset || ' ' || caveat_seq from etl_checkpoint where node = '$1'"; }
ckpt_of() { q "select segno || ' ' || seg_offset || ' ' || last_seq from etl_checkpoint where node = '$1'"; }
seq_of() { q "select coalesce(max(last_seq), 0) from etl_checkpoint where node = '$1'"; }
cav_inputs() { q "select string_agg(input, ',' order by input) from input_caveat where node = '$1'"; }
# etl_busy TABLE: the loader is inside a statement on TABLE
etl_busy() {
	psql -X -Atc "select count(*) from pg_stat_activity where application_name = 'cdrflow-etl'
		and state = 'active' and query like '%$1%'" | grep -q '^[1-9]'
}
# hold TABLE SECONDS / unhold TABLE: each row written to TABLE waits SECONDS first
hold() {
	q "create or replace function t2500_hold() returns trigger language plpgsql as
		\$\$ begin perform pg_sleep($2); return new; end \$\$" >/dev/null &&
	q "create trigger t2500_hold before insert or update on $1 for each row execute function t2500_hold()" >/dev/null
}
unhold() { q "drop trigger t2500_hold on $1" >/dev/null; }
# kill_in SPOOL TABLE OUT: start --once, kill it with -9 inside a statement on TABLE,
# end its server sessions (the killed client leaves them sleeping)
kill_in() {
	{ "$ETL" --once -c small.yaml --spool "$1" >"$3.out" 2>"$3.err" & } &&
	pid=$! && register_pid $pid &&
	wait_for "etl_busy $2" 120 &&
	kill -9 $pid && { wait $pid; test $? = 137; } &&
	q "select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name = 'cdrflow-etl'" >/dev/null
}

test_expect_success PG 'kill -9 after the batches committed, before their caveats were stored: the next run stores those of a run never killed' '
	mkdir killsp && cp -r sp-v2_disabledevents/v2_disabledevents killsp/v2kill &&
	cp -r sp-s01_answered/s01_answered killsp/s01kill &&
	hold input_caveat 60 && kill_in killsp input_caveat kill1 && unhold input_caveat &&
	test "$(seq_of v2kill)" = "$(seq_of v2_disabledevents)" &&
	test "$(q "select count(*) from input_caveat where node = '"'"'v2kill'"'"'")" = 0 &&
	test "$(cav_end v2kill)" = "0 0 0" &&
	# the nodes are stored one by one: s01kill (nothing missing) was, before v2kill
	test "$(cav_end s01kill)" = "$(ckpt_of s01kill)" &&
	"$ETL" --once -c small.yaml --spool killsp >kill2.out 2>kill2.err &&
	grep -q "^etl: events=0 " kill2.out &&
	test "$(q "select count(*) from input_caveat where node = '"'"'s01kill'"'"'")" = 0 &&
	cav_of v2kill >kill.cav && cav_of v2_disabledevents >ref.cav &&
	test_line_count kill.cav = 2 && test_cmp ref.cav kill.cav &&
	test "$(grep -c "warning: node v2kill:" kill2.err)" = 2 &&
	test "$(grep -c "warning: node v2kill: \(Newexten\|VarSet\) not received" kill2.err)" = 2 &&
	test "$(cav_end v2kill)" = "$(ckpt_of v2kill)" &&
	"$ETL" --once -c small.yaml --spool killsp >kill3.out 2>kill3.err &&
	! grep -q "warning: node" kill3.err && cav_of v2kill >kill3.cav && test_cmp kill.cav kill3.cav
'

test_expect_success PG 'kill -9 in the middle of the load: the next run diagnoses the committed part again, loads the rest, stores the same caveats' '
	mkdir midsp && cp -r sp-v2_disabledevents/v2_disabledevents midsp/v2mid &&
	hold etl_checkpoint 0.2 && {
		{ "$ETL" --once -c small.yaml --spool midsp >mid1.out 2>mid1.err & } &&
		pid=$! && register_pid $pid &&
		wait_for "test \$(seq_of v2mid) -ge 3000" 120 && wait_for "etl_busy etl_checkpoint" 10 &&
		kill -9 $pid && { wait $pid; test $? = 137; }
	}; rc=$?
	q "select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name = '"'"'cdrflow-etl'"'"'" >/dev/null &&
	unhold etl_checkpoint && test $rc = 0 &&
	set -- $(ckpt_of v2mid) && say "killed at sequence $3 of $(seq_of v2_disabledevents)" &&
	test "$3" -ge 3000 && test "$3" -lt "$(seq_of v2_disabledevents)" &&
	test "$(q "select count(*) from input_caveat where node = '"'"'v2mid'"'"'")" = 0 &&
	test "$(cav_end v2mid)" = "0 0 0" &&
	"$ETL" --once -c small.yaml --spool midsp >mid2.out 2>mid2.err &&
	test "$(seq_of v2mid)" = "$(seq_of v2_disabledevents)" &&
	cav_of v2mid >mid.cav && test_cmp ref.cav mid.cav &&
	test "$(grep -c "warning: node v2mid:" mid2.err)" = 2 &&
	test "$(cav_end v2mid)" = "$(ckpt_of v2mid)"
'

test_expect_success PG 'what a killed run left undiagnosed, removed from the spool meanwhile: said once, precisely; the rest diagnosed' '
	write_config seg.yaml segment_max_size=256KiB &&
	cdrflow_collector -c seg.yaml --replay "$(raw v2_disabledevents)" --spool gonesp --node v2gone >/dev/null &&
	test -f $(seg_of gonesp/v2gone 3) &&
	hold input_caveat 60 && kill_in gonesp input_caveat gone1 && unhold input_caveat &&
	test "$(cav_end v2gone)" = "0 0 0" &&
	set -- $(ckpt_of v2gone) &&
	first=$("$CDRFLOW_COLLECTOR" --list --spool gonesp --node v2gone | awk "\$3 == 2 { print \$2; exit }") &&
	rm $(seg_of gonesp/v2gone 1) &&
	"$ETL" --once -c small.yaml --spool gonesp >gone2.out 2>gone2.err &&
	grep "warning: node v2gone: records" gone2.err &&
	test "$(grep -c "warning: node v2gone: records loaded but not diagnosed" gone2.err)" = 1 &&
	grep -q "warning: node v2gone: records loaded but not diagnosed (a run ended before it stored their input caveats), sequences 1\.\.$3, from the node.s first up to segment $1 offset $2: the spool no longer holds all of them (1 place damaged or removed, the first: [^ ]*gonesp/v2gone/0*2\.seg: offset 128: sequence gap: expected sequence 1, found $first .*; $(($3 - first + 1)) records read again); inputs missing in what is gone stay unknown" gone2.err &&
	test "$(cav_end v2gone)" = "$(ckpt_of v2gone)" &&
	test "$(cav_inputs v2gone)" = newexten,varset &&
	"$ETL" --once -c small.yaml --spool gonesp >gone3.out 2>gone3.err &&
	! grep -q "warning: node" gone3.err
'

test_expect_success PG 'a killed run that passed a recorded skip: the next run passes it again, silently; the caveats those of a run never killed' '
	mkdir skipk && cp -r skipsp/v2skip skipk/v2skipk &&
	test_exit_code 65 "$ETL" --once -c small.yaml --spool skipk >skk1.out 2>skk1.err &&
	off=$(sed -n "s/.*0000000000000001\.seg: offset \([0-9]*\): CRC.*/\1/p" skk1.err | head -1) &&
	test "$(cav_end v2skipk | cut -d" " -f1,2)" = "1 $off" &&
	"$ETL" skip --node v2skipk --segment 1 --offset $off --spool skipk >/dev/null 2>&1 &&
	hold input_caveat 60 && kill_in skipk input_caveat skk2 && unhold input_caveat &&
	grep -q "node v2skipk: passing segment 1 offset $off" skk2.err &&
	test "$(cav_end v2skipk | cut -d" " -f1,2)" = "1 $off" &&
	"$ETL" --once -c small.yaml --spool skipk >skk3.out 2>skk3.err &&
	! grep -q "not diagnosed" skk3.err && ! grep -q "doctor:" skk3.err &&
	cav_of v2skipk >skk.cav && cav_of v2skip >skip.cav &&
	test_line_count skk.cav = 2 && test_cmp skip.cav skk.cav &&
	test "$(cav_end v2skipk)" = "$(ckpt_of v2skipk)"
'

test_done
