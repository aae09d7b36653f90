#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='lost segments and lost tails: --verify and the ETL stop at the exact position'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
[ -x "$ETL" ] || bail_out "no $ETL (run make)"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || skip_all "PostgreSQL server binaries are not installed"

PGDIR=$(mktemp -d /tmp/cdrflow-t1400.XXXXXX)
export CDRFLOW_PGPORT=$(free_port)
test_at_exit '"$TEST_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"'
eval "$("$TEST_ROOT/scripts/pg.sh" start "$PGDIR")" || bail_out "cannot start PostgreSQL"
"$ETL" migrate >/dev/null || bail_out "migrate failed"
S01=$(capture_path s01_answered) || bail_out "capture s01_answered not found"
q() { psql -Atc "$1"; }
ckpt() { q "select segno || ' ' || seg_offset || ' ' || last_seq from etl_checkpoint where node = '$1'"; }
# seg_end SPOOL NODE SEGNO: offset just after the last record of a segment, and its sequence
seg_last() { "$CDRFLOW_COLLECTOR" --list --spool "$1" --node "$2" | awk -v s="$3" '$3 == s {o = $4 + 32 + length($1) + $6; q = $2} END {print o, q}'; }

# two nodes from the same real capture, 64 KiB segments: s01 fills about 8 each
test_expect_success 'setup: two nodes of several segments each, both verify' '
	write_config c.yaml segment_max_size=64KiB &&
	for n in a b; do cdrflow_collector -c c.yaml --replay "$S01" --spool good --node $n >/dev/null || return 1; done &&
	test "$(ls good/a/*.seg | wc -l)" -ge 5 &&
	verify_ok good
'

test_expect_success 'a deleted middle segment: --verify 65, names the missing segment' '
	cp -a good s1 && rm s1/a/0000000000000003.seg &&
	test_exit_code 65 cdrflow_collector --verify --spool s1 >out 2>err &&
	cat err &&
	grep -q "corrupt=1$" out &&
	grep -q "s1/a/0000000000000003.seg: offset 0: segment is missing but later segments exist" err
'

test_expect_success 'a deleted middle segment: the ETL stops there (65), checkpoint at the end of segment 2' '
	test_exit_code 65 "$ETL" --once --spool s1 2>err && cat err &&
	grep -q "s1/a/0000000000000003.seg: offset 0: segment is missing but later segments exist" err &&
	set -- $(seg_last good a 2) &&
	test "$(ckpt a)" = "2 $1 $2"
'

test_expect_success 'a closed segment cut at a record boundary: --verify reports the gap at the next record' '
	cp -a good s2 &&
	set -- $(seg_last good a 3) && lastseq=$2 &&
	cut=$("$CDRFLOW_COLLECTOR" --list --spool good --node a | awk "\$3 == 3 {print \$4}" | sed -n 3p) &&
	truncate -s "$cut" s2/a/0000000000000003.seg &&
	first4=$("$CDRFLOW_COLLECTOR" --list --spool good --node a | awk "\$3 == 4 {print \$2; exit}") &&
	test_exit_code 65 cdrflow_collector --verify --spool s2 >out 2>err && cat err &&
	grep -q "corrupt=1$" out &&
	grep -q "s2/a/0000000000000004.seg: offset 128: sequence gap: expected sequence [0-9]*, found $first4 (" err
'

test_expect_success 'a closed segment cut at a record boundary: the ETL stops at the same position' '
	q "truncate etl_checkpoint, cel, ami_event, cdr, call" >/dev/null &&
	test_exit_code 65 "$ETL" --once --spool s2 2>err && cat err &&
	grep -q "s2/a/0000000000000004.seg: offset 128: sequence gap" err &&
	set -- $(ckpt a) && test "$1" = 3 && test "$2" = "$cut"
'

test_expect_success 'a tail cut off below what the ETL loaded, then new records: the ETL stops' '
	q "truncate etl_checkpoint, cel, ami_event, cdr, call" >/dev/null &&
	cp -a good s3 && "$ETL" --once --spool s3 >/dev/null &&
	last=$(ls s3/a/*.seg | tail -1) && segno=$((10#$(basename "$last" .seg))) &&
	cut=$("$CDRFLOW_COLLECTOR" --list --spool s3 --node a | awk -v s=$segno "\$3 == s {print \$4}" | sed -n 2p) &&
	truncate -s "$cut" "$last" &&
	cdrflow_collector -c c.yaml --replay "$S01" --spool s3 --node a >/dev/null &&
	before=$(ckpt a) &&
	test_exit_code 65 "$ETL" --once --spool s3 2>err && cat err &&
	grep -q "$(basename "$last"): offset [0-9]*: the segment ends at $cut, before the read position: its tail was lost" err &&
	test "$(ckpt a)" = "$before"
'

test_expect_success 'an intact spool still loads and verifies (no false alarm)' '
	q "truncate etl_checkpoint, cel, ami_event, cdr, call" >/dev/null &&
	cp -a good s4 && "$ETL" --once --spool s4 >/dev/null &&
	cdrflow_collector -c c.yaml --replay "$S01" --spool s4 --node a >/dev/null &&
	"$ETL" --once --spool s4 >/dev/null && verify_ok s4
'

test_done
