#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='docs/sql-functions.md names the current definition of every SQL function and view'
. "$(dirname "$0")/../lib/test-lib.sh"

test_expect_success 'docs/sql-functions.md is what scripts/sql-functions.sh makes of sql/ now' '
	"$TEST_ROOT/scripts/sql-functions.sh" "$TEST_ROOT/sql" >now.md &&
	test_cmp now.md "$TEST_ROOT/docs/sql-functions.md"
'

test_expect_success 'the current definition is the last one: rollup_leg_v lives in 0051, replaced 0009 and 0016' '
	grep -q "^| \`rollup_leg_v\` | view | \`sql/0051_margin_rollup.sql:[0-9]*\` | \`sql/0009_rollups_rls.sql:[0-9]*\`, \`sql/0016_metrics.sql:[0-9]*\` |$" now.md &&
	grep -q "^| \`metric_asr\` | function | \`sql/0016_metrics.sql:[0-9]*\` |  |$" now.md
'

test_done
