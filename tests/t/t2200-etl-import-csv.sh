#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='cdrflow-etl import-csv: Asterisk Master.csv backfill into cdr'
. "$(dirname "$0")/../lib/test-lib.sh"
ETL=$CDRFLOW_BUILD/cdrflow-etl
[ -x "$ETL" ] || bail_out "no $ETL (run make)"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || skip_all "PostgreSQL server binaries are not installed"
[ -d "$CDRFLOW_SHARED/captures" ] || skip_all "no captures in $CDRFLOW_SHARED"

PGDIR=$(mktemp -d /tmp/cdrflow-t2200.XXXXXX)
export CDRFLOW_PGPORT=$(free_port)
test_at_exit '"$TEST_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"'
eval "$("$TEST_ROOT/scripts/pg.sh" start "$PGDIR")" || bail_out "cannot start PostgreSQL"
"$ETL" migrate >/dev/null 2>&1 || bail_out "migrate failed"
q() { psql -Atc "$1"; }

# Dump cdr rows of a node back as Master.csv fields (same order) for comparison.
dump_as_csv() {
	psql -At -F '|' -c "select accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp, lastdata,
		to_char(calldate, 'YYYY-MM-DD HH24:MI:SS'), coalesce(to_char(answer, 'YYYY-MM-DD HH24:MI:SS'), ''),
		to_char(\"end\", 'YYYY-MM-DD HH24:MI:SS'), duration, billsec, disposition,
		case amaflags when 1 then 'OMIT' when 2 then 'BILLING' when 3 then 'DOCUMENTATION' else '' end,
		uniqueid, userfield, peeraccount, linkedid, sequence
		from cdr where node = '$1' order by sequence"
}
csv_as_rows() { # the same projection straight from the file, with python's csv module
	"$PYTHON" -c '
import csv, sys
for r in csv.reader(open(sys.argv[1], newline="")):
    print("|".join(r))' "$1" | sort -t'|' -k21,21n
}

test_expect_success 'every capture'"'"'s Master.csv imports, field for field' '
	for d in "$CDRFLOW_SHARED"/captures/s0*/; do
		n=$(basename "$d") &&
		"$ETL" import-csv --node "$n" "$d/cdr.csv" >out 2>err &&
		grep -q "^imported $(wc -l <"$d/cdr.csv") legs" out &&
		dump_as_csv "$n" >got &&
		csv_as_rows "$d/cdr.csv" >want &&
		test_cmp want got || return 1
	done &&
	test "$(q "select count(*) from cdr where imported")" = "$(cat "$CDRFLOW_SHARED"/captures/s0*/cdr.csv | wc -l)"
'

test_expect_success 'the same file again is refused (65), --force loads it' '
	f=$CDRFLOW_SHARED/captures/s01_answered/cdr.csv &&
	test_exit_code 65 "$ETL" import-csv --node again "$f" 2>err &&
	grep -q "already imported" err &&
	test "$(q "select count(*) from cdr where node = '"'"'again'"'"'")" = 0 &&
	"$ETL" import-csv --force --node again "$f" >out &&
	test "$(q "select count(*) from cdr where node = '"'"'again'"'"'")" = 18
'

test_expect_success 'a file without newcdrcolumns (the sample cdr.conf) imports; linkedid falls back to uniqueid' '
	"$PYTHON" -c "
import csv, sys
w = csv.writer(open(\"old.csv\", \"w\", newline=\"\"), quoting=csv.QUOTE_ALL, lineterminator=\"\\n\")
for r in csv.reader(open(sys.argv[1], newline=\"\")):
    w.writerow(r[:18])" "$CDRFLOW_SHARED/captures/s02_unanswered/cdr.csv" &&
	"$ETL" import-csv --node old old.csv >out &&
	grep -q "^imported 41 legs" out &&
	test "$(q "select count(*) from cdr where node = '"'"'old'"'"' and linkedid = uniqueid and sequence is null")" = 41 &&
	test "$(q "select layout from cdr_import where node = '"'"'old'"'"'")" = "uniqueid=yes userfield=yes newcdrcolumns=no"
'

test_expect_success 'dates are read in --timezone' '
	head -n 1 "$CDRFLOW_SHARED/captures/s01_answered/cdr.csv" >one.csv &&
	"$ETL" import-csv --node tzutc one.csv >out &&
	"$ETL" import-csv --force --node tzams --timezone Europe/Amsterdam one.csv >out &&
	test "$(q "select (select calldate from cdr where node = '"'"'tzutc'"'"') - (select calldate from cdr where node = '"'"'tzams'"'"')")" = 01:00:00 &&
	test_exit_code 64 "$ETL" import-csv --force --node tzbad --timezone Mars/Olympus one.csv 2>err &&
	grep -q "unknown --timezone" err
'

test_expect_success 'a bad row rejects the whole file with its line number, nothing loaded' '
	head -n 5 "$CDRFLOW_SHARED/captures/s01_answered/cdr.csv" >bad.csv &&
	sed -i "3s/,6,5,/,six,5,/" bad.csv &&
	test_exit_code 65 "$ETL" import-csv --node bad bad.csv 2>err &&
	grep -q "line 3: duration/billsec" err &&
	printf "\"a\",\"b\"\n" >short.csv &&
	test_exit_code 65 "$ETL" import-csv --node bad short.csv 2>err &&
	grep -q "not an Asterisk Master.csv row" err &&
	test "$(q "select count(*) from cdr where node = '"'"'bad'"'"'")" = 0 &&
	test_exit_code 66 "$ETL" import-csv --node bad /nonexistent.csv 2>err
'

test_done
