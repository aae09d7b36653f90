#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='a NUL byte in an AMI value: U+FFFD in every column (cel, ami_event, cdr.clid/src, cdr-csv), never cut'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
[ -x "$ETL" ] || bail_out "no $ETL (run make)"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || skip_all "PostgreSQL server binaries are not installed"
test_have_prereq PYTHON || skip_all "python3 is needed to build the capture"

PGDIR=$(mktemp -d /tmp/cdrflow-t2430.XXXXXX)
export CDRFLOW_PGPORT=$(free_port)
test_at_exit '"$TEST_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"'
eval "$("$TEST_ROOT/scripts/pg.sh" start "$PGDIR")" || bail_out "cannot start PostgreSQL"
"$ETL" migrate >/dev/null || bail_out "migrate failed"
S01=$(capture_path s01_answered) || bail_out "capture s01_answered not found"
q() { psql -X -Atc "$1"; }
FFFD="chr(65533)"

cat >"$TRASH/addnul.py" <<'PY'
import re, sys
d = sys.stdin.buffer.read()
d, n1 = re.subn(rb"(?im)^([A-Za-z]*(?:CallerIDName|ConnectedLineName)): Alice\r$", b"\\1: Al\x00ice\r", d)
d, n2 = re.subn(rb"(?im)^([A-Za-z]*(?:CallerIDNum|ConnectedLineNum)): 1001\r$", b"\\1: 10\x0001\r", d)
assert n1 > 10 and n2 > 10, (n1, n2)
sys.stdout.buffer.write(d)
PY

# the real capture, with a NUL inside every "Alice" caller name and inside
# the caller number 1001 (every event, every prefix: CallerIDName,
# DestCallerIDName, ConnectedLineName ...)
test_expect_success 'setup: s01 with NUL bytes in caller names and numbers, loaded' '
	xz -dcf "$S01" | "$PYTHON" "$TRASH/addnul.py" >nul.raw &&
	test "$(tr -cd "\000" <nul.raw | wc -c)" -gt 20 &&
	cdrflow_collector --replay nul.raw --spool sp --node n >/dev/null &&
	"$ETL" --once --spool sp >/dev/null
'

test_expect_success 'cel keeps the NUL as U+FFFD (as before)' '
	test "$(q "select count(*) from cel where cid_name = '"'"'Al'"'"' || $FFFD || '"'"'ice'"'"'")" -gt 0 &&
	test "$(q "select count(*) from cel where cid_name like '"'"'Al%'"'"' and cid_name not like '"'"'%ice'"'"'")" = 0
'

test_expect_success 'cdr.clid and cdr.src: U+FFFD too, not cut at the NUL' '
	q "select clid, src from cdr order by calldate" &&
	test "$(q "select count(*) from cdr where clid = '"'"'\"Al'"'"' || $FFFD || '"'"'ice\" <10'"'"' || $FFFD || '"'"'01>'"'"'")" -gt 0 &&
	test "$(q "select count(*) from cdr where src = '"'"'10'"'"' || $FFFD || '"'"'01'"'"'")" -gt 0 &&
	test "$(q "select count(*) from cdr where clid like '"'"'\"Al\"%'"'"' or src = '"'"'10'"'"'")" = 0
'

test_expect_success 'cdr-csv (Master.csv rebuild) writes the same U+FFFD' '
	"$ETL" cdr-csv --spool sp >master.csv 2>/dev/null &&
	grep -q "\"Al"$'"'"'\xef\xbf\xbd'"'"'"ice\"\" <10"$'"'"'\xef\xbf\xbd'"'"'"01>" master.csv &&
	! grep -q "\"\"Al\"\"" master.csv
'

test_done
