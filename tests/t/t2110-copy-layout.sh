#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='cdrflow-etl COPY layout: every column list names the DDL columns, every row writer writes them, in order'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
[ -x "$ETL" ] || bail_out "no $ETL (run make)"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || skip_all "PostgreSQL server binaries are not installed"
capture_path s07_trunk_tenant >/dev/null || bail_out "captures not found"

start_private_pg
"$ETL" migrate >/dev/null || bail_out "migrate failed"
q() { psql -Atc "$1"; }

cat >etl.yaml <<'YAML'
cdr:
  unanswered: yes
  congestion: yes
tenants:
  trunks: "SIP/loop-*"
  rules:
    - tenant: tenantA
      accountcode: tenantA
numbering:
  - country_code: "44"
    national_prefix: "0"
    international_prefix: "00"
YAML
# Columns no COPY writes: filled by analytics steps (QoS), by import-csv
# (imported) or generated (identity).  Who may see an event (tenants) is
# written with the row, and corrected by the analytics step.
# Anything else the DDL has and the COPY list lacks is a column the ETL
# forgot.  (A leg's call_id and a call's facts are in the COPY rows.)
LATER_cdr="worst_mos imported"
LATER_call="worst_mos worst_mos_leg"
LATER_cel="id"
LATER_ami_event="id"

test_expect_success 'transform --copy-out writes the rows and the column list of every table' '
	for s in s01_answered s05_transfer s07_trunk_tenant; do
		"$TEST_ROOT/tests/truth/strip-cdr.py" "$(capture_path $s)" $s.raw &&
		cdrflow_collector --replay $s.raw --spool spool --node $s >/dev/null || return 1
	done &&
	mkdir out &&
	"$ETL" transform -c etl.yaml --spool spool --copy-out out >/dev/null &&
	for t in cel ami_event cdr call; do
		test -s out/$t.copy && test -s out/$t.columns || return 1
	done
'

test_expect_success 'every listed column is a column of the table, the table has no other but the documented later ones' '
	for t in cel ami_event cdr call; do
		tr -d "\" " <out/$t.columns | tr , "\n" | sort >listed.$t &&
		q "select attname from pg_attribute where attrelid = '"'"'$t'"'"'::regclass and attnum > 0 and not attisdropped" | sort >ddl.$t &&
		comm -23 listed.$t ddl.$t >unknown.$t && { test ! -s unknown.$t || { echo "$t: not columns:"; cat unknown.$t; return 1; }; } &&
		eval "later=\$LATER_$t" &&
		comm -13 listed.$t ddl.$t >missing.$t &&
		printf "%s\n" $later | sort >later.$t &&
		comm -23 missing.$t later.$t >forgotten.$t &&
		{ test ! -s forgotten.$t || { echo "$t: the DDL has columns no COPY writes:"; cat forgotten.$t; return 1; }; } || return 1
	done
'

test_expect_success 'every row has as many fields as its column list, and the rows COPY into the DDL as they are' '
	for t in cel ami_event cdr call; do
		n=$(tr , "\n" <out/$t.columns | wc -l) &&
		awk -F"\t" -v n=$n "NF != n { print FILENAME \": line \" NR \" has \" NF \" fields, want \" n; bad = 1 } END { exit bad }" out/$t.copy &&
		printf "create temp table x (like %s including defaults);\n\\copy x (%s) from out/%s.copy\nselect count(*) from x;\n" \
			$t "$(cat out/$t.columns)" $t >copy.$t.sql &&
		psql -X -Aqt -v ON_ERROR_STOP=1 -f copy.$t.sql >rows.$t &&
		test "$(cat rows.$t)" = "$(wc -l <out/$t.copy)" || return 1
	done
'

# (transform runs without a database, so without its country table: the
# legs' dst_country is NULL there; the load fills it)
test_expect_success 'the COPYed legs hold what the load stores: trunk, tenant, E.164 in their columns' '
	"$ETL" --once -c etl.yaml --spool spool >/dev/null &&
	q "create table copied (like cdr including defaults)" &&
	printf "\\copy copied (%s) from out/cdr.copy\n" "$(cat out/cdr.columns)" >copied.sql &&
	psql -X -q -v ON_ERROR_STOP=1 -f copied.sql &&
	test "$(q "select count(*) from copied")" = "$(q "select count(*) from cdr")" &&
	test "$(q "select count(*) from (select node, uniqueid, calldate, sequence, tenant, direction, src_e164, dst_e164, trunk, carrier from copied
		except select node, uniqueid, calldate, sequence, tenant, direction, src_e164, dst_e164, trunk, carrier from cdr) d")" = 0 &&
	test "$(q "select count(*) from cdr where trunk = '"'"'SIP/loop'"'"'")" -gt 0 &&
	test "$(q "select count(*) from cdr where dst_country is not null")" -gt 0
'

test_done
