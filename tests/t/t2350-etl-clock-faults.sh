#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='hostile clocks: odd Timestamps never block, lose or duplicate legs; no clock is refused; resumed loads are byte-identical'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
[ -x "$ETL" ] || bail_out "no $ETL (run make)"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || skip_all "PostgreSQL server binaries are not installed"
capture_path s05_transfer >/dev/null || bail_out "captures not found"
V1=$CDRFLOW_SHARED/captures/v1_timestampevents_no
[ -r "$V1/spool.tar.xz" ] || bail_out "v1_timestampevents_no (with spool.tar.xz) not found"

PGDIR=$(mktemp -d /tmp/cdrflow-t2350.XXXXXX)
export CDRFLOW_PGPORT=$(free_port)
test_at_exit '"$TEST_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"'
eval "$("$TEST_ROOT/scripts/pg.sh" start "$PGDIR")" || bail_out "cannot start PostgreSQL"
"$ETL" migrate >/dev/null || bail_out "migrate failed"

FAULT=$TEST_ROOT/tests/truth/clock-fault.py
STRIP=$TEST_ROOT/tests/truth/strip-cdr.py
cdrdiff() { python3 "$TEST_ROOT/tests/truth/cdr-diff.py" "$@"; }
GROW=$TEST_ROOT/tests/truth/spool-grow.py
q() { psql -Atc "$1"; }
oracle() { echo "$(dirname "$(capture_path "$1")")/cdr.csv"; }
# the cdr.conf of the captures
# every event in ami_event: the odd ones are checked there
cat >etl.yaml <<'YAML'
etl:
  ami_event_store: all
cdr:
  unanswered: yes
  congestion: yes
  endbeforehexten: no
YAML
sed 's/^etl:$/etl:\n  batch_events: 300/' etl.yaml >small.yaml
# NODE [WHERE]: the node's legs as Master.csv rows (all columns cdr-diff.py reads)
export_legs() {
	psql -Atc "\\copy (select accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp, lastdata,
		to_char(calldate at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
		coalesce(to_char(answer at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'), ''),
		to_char(\"end\" at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'), duration, billsec, disposition,
		case amaflags when 1 then 'OMIT' when 2 then 'BILLING' when 3 then 'DOCUMENTATION' else 'Unknown' end,
		uniqueid, userfield, peeraccount, linkedid, sequence from cdr where node = '$1' ${2:+and $2}
		order by sequence) to stdout with csv"
}
# NODE: every column of every leg and call, for byte comparison (node left out)
dump_rows() {
	psql -Atc "\\copy (select calldate, answer, \"end\", clid, src, dst, dcontext, channel, dstchannel, lastapp,
		lastdata, duration, billsec, disposition, amaflags, accountcode, peeraccount, uniqueid, linkedid,
		userfield, sequence, tenant, call_id, imported, incomplete, clock_fault
		from cdr where node = '$1' order by sequence) to stdout" &&
	psql -Atc "\\copy (select call_id, start, \"end\", first_answer, direction, src, dst, tenant, legs,
		total_billsec, duration, outcome, transfers, linkedids, incomplete, clock_fault
		from call where node = '$1' order by call_id, start) to stdout"
}
# the diff line's counters
field() { sed -n "s/.* $1=\\([0-9]*\\).*/\\1/p" "$2" | tail -1; }

# count TABLE NODE [CONDITION]
count() { q "select count(*) from $1 where node = '$2' ${3:+and $3}"; }

# ---------------------------------------------------------------- odd timestamps
# Each mode edits one BridgeEnter of s05_transfer; two --once runs must store
# every leg once, close nothing as incomplete, name the event in one warning
# and flag its call (and the legs finished after it), and leave every other
# leg exactly Asterisk's.
odd_event() {
	local mode=$1 uid legs
	"$FAULT" "$(capture_path s05_transfer)" $mode.raw $mode BridgeEnter 2>$mode.what &&
	uid=$(awk '{print $3}' $mode.what) &&
	cdrflow_collector --replay $mode.raw --spool sp_$mode --node $mode >/dev/null &&
	"$ETL" --once -c etl.yaml --spool sp_$mode >run1 2>err1 &&
	"$ETL" --once -c etl.yaml --spool sp_$mode >run2 2>err2 &&
	cat err1 &&
	grep "warning: node $mode: event BridgeEnter (record [0-9]*) of channel .*(uniqueid $uid, call .*flagged clock_fault" err1 &&
	test_line_count err1 = 1 &&
	! grep warning err2 &&
	legs=$(wc -l <"$(oracle s05_transfer)") &&
	test "$(count cdr $mode)" = $legs &&
	test "$(count cdr $mode incomplete)" = 0 &&
	test "$(count call $mode)" = 7 &&
	test "$(count call $mode clock_fault)" = 1 &&
	test "$(count cdr $mode clock_fault)" -ge 1 &&
	test "$(count cdr $mode "clock_fault and linkedid not in
		(select unnest(linkedids) from call where node = '$mode' and clock_fault)")" = 0 &&
	export_legs $mode >$mode.ours &&
	{ cdrdiff --label $mode "$(oracle s05_transfer)" $mode.ours >$mode.cmp; tail -1 $mode.cmp; } &&
	test "$(field missing $mode.cmp)" = 0 && test "$(field extra $mode.cmp)" = 0 &&
	test "$(field differs $mode.cmp)" = 0 &&
	export_legs $mode "not clock_fault" >$mode.clean &&
	{ cdrdiff --label $mode-unflagged "$(oracle s05_transfer)" $mode.clean >$mode.cmp2; :; } &&
	test "$(field identical $mode.cmp2)" = "$(wc -l <$mode.clean)"
}
for mode in future backwards negative garbage missing; do
	test_expect_success "one event $mode: every leg once, exact, its call flagged, one warning" "odd_event $mode"
done

test_expect_success 'the odd event is stored as it came (its own time, future partition and all)' '
	test "$(count ami_event future "event = '"'"'BridgeEnter'"'"' and eventtime > now() + interval '"'"'100 days'"'"'")" = 1 &&
	test "$(count ami_event negative)" = "$(count ami_event future)"
'

test_expect_success 'a clock set one hour ahead mid-stream: no leg lost, none twice, none incomplete' '
	"$FAULT" "$(capture_path s05_transfer)" step.raw step BridgeEnter 2>/dev/null &&
	cdrflow_collector --replay step.raw --spool sp_step --node step >/dev/null &&
	"$ETL" --once -c etl.yaml --spool sp_step >/dev/null 2>err &&
	"$ETL" --once -c etl.yaml --spool sp_step >/dev/null 2>>err &&
	test "$(count cdr step)" = "$(wc -l <"$(oracle s05_transfer)")" &&
	test "$(count cdr step incomplete)" = 0 &&
	test "$(count call step)" = 7
'

test_expect_success 'a clock set back one hour: no leg lost, none twice, none incomplete, one warning' '
	"$FAULT" "$(capture_path s05_transfer)" back.raw stepback BridgeEnter 2>/dev/null &&
	cdrflow_collector --replay back.raw --spool sp_back --node back >/dev/null &&
	"$ETL" --once -c etl.yaml --spool sp_back >/dev/null 2>err &&
	"$ETL" --once -c etl.yaml --spool sp_back >/dev/null 2>>err &&
	grep "warning: node back: the stream.s clock went back 3599 s at record" err &&
	test_line_count err = 1 &&
	test "$(count cdr back)" = "$(wc -l <"$(oracle s05_transfer)")" &&
	test "$(count cdr back incomplete)" = 0 &&
	test "$(count call back)" = 7
'

test_expect_success 'every tenth Timestamp garbage: every leg once, none incomplete, warnings capped' '
	"$FAULT" "$(capture_path s05_transfer)" ten.raw every10 2>/dev/null &&
	cdrflow_collector --replay ten.raw --spool sp_ten --node ten >/dev/null &&
	"$ETL" --once -c small.yaml --spool sp_ten >/dev/null 2>err &&
	test_line_count err -le 21 &&
	grep "further odd events: every 1000th is reported" err &&
	test "$(count cdr ten)" = "$(wc -l <"$(oracle s05_transfer)")" &&
	test "$(count cdr ten incomplete)" = 0 &&
	test "$(count call ten)" = 7 &&
	export_legs ten >ten.ours &&
	{ cdrdiff --label ten "$(oracle s05_transfer)" ten.ours >ten.cmp; tail -1 ten.cmp; } &&
	test "$(field missing ten.cmp)" = 0 && test "$(field extra ten.cmp)" = 0 && test "$(field differs ten.cmp)" = 0
'

test_expect_success 'a future event does not stop later calls: s05 with one future event, then s01, in two runs' '
	"$FAULT" "$(capture_path s05_transfer)" f1.raw future Newchannel 2>/dev/null &&
	cdrflow_collector --replay f1.raw --spool sp_later --node later >/dev/null &&
	"$ETL" --once -c small.yaml --spool sp_later >/dev/null 2>&1 &&
	"$STRIP" "$(capture_path s01_answered)" s01.raw &&
	cdrflow_collector --replay s01.raw --spool sp_later --node later >/dev/null &&
	"$ETL" --once -c small.yaml --spool sp_later >/dev/null 2>&1 &&
	cat "$(oracle s05_transfer)" "$(oracle s01_answered)" >later.oracle &&
	test "$(count cdr later)" = "$(wc -l <later.oracle)" &&
	test "$(count cdr later incomplete)" = 0 &&
	export_legs later "not clock_fault" >later.ours &&
	{ cdrdiff --label later later.oracle later.ours >later.cmp; tail -1 later.cmp; } &&
	test "$(field identical later.cmp)" = "$(wc -l <later.ours)" &&
	test "$(count cdr later "uniqueid like '"'"'lab-17952885%'"'"'")" = "$(wc -l <"$(oracle s01_answered)")"
'

# ---------------------------------------------------------------- a leg is stored once
test_expect_success 'the database refuses a second copy of a leg, or a changed identity' '
	! psql -qc "insert into cdr select * from cdr where node = '"'"'future'"'"' limit 1" 2>err &&
	grep "already stored" err &&
	! psql -qc "update cdr set sequence = sequence + 1 where node = '"'"'future'"'"'" 2>err &&
	grep "do not change" err
'

test_expect_success 'a loader that re-runs legs it stored (checkpoint rewound) writes none twice, says so' '
	before=$(count cdr future) &&
	calls=$(count call future) &&
	q "update etl_checkpoint set cdr_segno = 0, cdr_offset = 0, cdr_done_seq = 0 where node = '"'"'future'"'"'" &&
	"$ETL" --once -c etl.yaml --spool sp_future >/dev/null 2>err &&
	grep "legs (count, first sequence) were stored already; not written twice" err &&
	grep "calls (count, first call_id) were stored already; not written twice" err &&
	test "$(count cdr future)" = $before &&
	test "$(count call future)" = $calls
'

# ---------------------------------------------------------------- no clock
test_expect_success 'a replay of a capture without Timestamp headers is refused (65), nothing stored' '
	test_exit_code 65 cdrflow_collector --replay "$V1/ami.raw.xz" --spool noclock --node v1 >out 2>err &&
	grep "no event carries a Timestamp header" err &&
	test_line_count err = 1 &&
	"$FAULT" "$(capture_path s01_answered)" none.raw none 2>/dev/null &&
	test_exit_code 65 cdrflow_collector --replay none.raw --spool noclock --node s01 >out 2>err &&
	grep "timestampevents = no" err &&
	cdrflow_collector --list --spool noclock >list 2>&1; cat list;
	! "$ETL" cdr-csv -c etl.yaml --spool noclock 2>/dev/null | grep -q .
'

test_expect_success 'v1 live spool (receive times only): exact but for second-boundary legs' '
	tar -xJf "$V1/spool.tar.xz" &&
	"$ETL" cdr-csv -c etl.yaml --spool spool >v1.csv 2>v1.err &&
	cdrdiff --label v1-csv "$V1/cdr.csv" v1.csv >v1.cmp; tail -1 v1.cmp &&
	test "$(field missing v1.cmp)" = 0 && test "$(field extra v1.cmp)" = 0 && test "$(field differs v1.cmp)" = 0 &&
	test "$(field identical v1.cmp)" -ge 729 &&
	test "$(grep -c warning v1.err)" = 1 && grep -q "warning: node lab: Timestamp header not received" v1.err &&
	"$ETL" --once -c etl.yaml --spool spool >/dev/null &&
	export_legs lab >v1.ours &&
	cdrdiff --label v1-db "$V1/cdr.csv" v1.ours >v1db.cmp; tail -1 v1db.cmp &&
	test "$(field identical v1db.cmp)" = "$(field identical v1.cmp)"
'

# ---------------------------------------------------------------- determinism
test_expect_success 'v1 live spool read as it grew, in 25 steps, some runs killed: rows byte-identical' '
	dump_rows lab >uninterrupted &&
	mkdir -p grown &&
	for i in $(seq 1 25); do
		"$GROW" spool/lab grown/lab2 $i 25 || return 1
		[ $((i % 3)) != 0 ] || kill_after 0.9 "$ETL" --once -c small.yaml --spool grown
		"$ETL" --once -c small.yaml --spool grown >/dev/null 2>&1 || return 1
	done &&
	dump_rows lab2 >resumed &&
	test_line_count resumed -gt 900 &&
	test_cmp uninterrupted resumed
'

test_expect_success 'every tenth Timestamp garbage, fed in 15 pieces: rows byte-identical to one load' '
	"$STRIP" ten.raw tenp 15 &&
	for i in $(seq 1 15); do
		cdrflow_collector --replay tenp.$i --spool sp_tenp --node tenp >/dev/null &&
		"$ETL" --once -c small.yaml --spool sp_tenp >/dev/null 2>&1 || return 1
	done &&
	dump_rows ten >ten.rows &&
	dump_rows tenp >tenp.rows &&
	test_line_count ten.rows = 39 &&
	test_cmp ten.rows tenp.rows
'

test_expect_success 's08 (40 calls/s) fed in 20 pieces: rows byte-identical to one load (CEL twins across resumes)' '
	"$STRIP" "$(capture_path s08_burst)" s08.raw &&
	"$STRIP" "$(capture_path s08_burst)" s08p 20 &&
	cdrflow_collector --replay s08.raw --spool sp_whole --node s08 >/dev/null &&
	"$ETL" --once -c etl.yaml --spool sp_whole >/dev/null &&
	for i in $(seq 1 20); do
		cdrflow_collector --replay s08p.$i --spool sp_pieces --node s08p >/dev/null &&
		"$ETL" --once -c small.yaml --spool sp_pieces >/dev/null || return 1
	done &&
	dump_rows s08 >whole.rows &&
	dump_rows s08p >pieces.rows &&
	test_line_count whole.rows -gt 8000 &&
	test_cmp whole.rows pieces.rows
'

test_expect_success 's08 under a kill -9 loop (batches of 3000): rows byte-identical to one load' '
	cp -r sp_whole sp_killed &&
	mv sp_killed/s08 sp_killed/s08k &&
	sed "s/^etl:$/etl:\\n  batch_events: 3000/" etl.yaml >mid.yaml &&
	for i in $(seq 1 12); do
		kill_after 9 "$ETL" --once -c mid.yaml --spool sp_killed
	done &&
	"$ETL" --once -c mid.yaml --spool sp_killed >/dev/null &&
	dump_rows s08k >killed.rows &&
	test_cmp whole.rows killed.rows
'

test_done
