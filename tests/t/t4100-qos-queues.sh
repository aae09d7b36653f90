#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='QoS per leg from RTCP (MOS), queue and agent metrics from AMI and from queue_log'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
[ -x "$ETL" ] || bail_out "no $ETL (run make)"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || skip_all "PostgreSQL server binaries are not installed"
capture_path s04_queue >/dev/null || bail_out "captures not found"
QLOG=$CDRFLOW_SHARED/captures/s04_queue/queue_log
[ -r "$QLOG" ] || skip_all "no queue_log in the s04 capture"

PGDIR=$(mktemp -d /tmp/cdrflow-t4100.XXXXXX)
export CDRFLOW_PGPORT=$(free_port)
test_at_exit '"$TEST_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"'
eval "$("$TEST_ROOT/scripts/pg.sh" start "$PGDIR")" || bail_out "cannot start PostgreSQL"
"$ETL" migrate >/dev/null 2>&1 || bail_out "migrate failed"

STRIP=$TEST_ROOT/tests/truth/strip-cdr.py
DIGEST=$TEST_ROOT/tests/truth/rtcp-digest.py
q() { psql -Atc "$1"; }
# the captures were made with these cdr.conf settings (ASTERISK_SETUP.md)
printf 'cdr:\n  unanswered: yes\n  congestion: yes\n  endbeforehexten: no\n' >etl.yaml
{ printf 'etl:\n  batch_events: 100\n'; cat etl.yaml; } >small.yaml
# import a queue_log file: import_qlog NODE FILE -> number of new lines
import_qlog() {
	printf '\\set content `cat %s`\nSELECT cdrflow_import_queue_log(%s, :%s);\n' "$2" "'$1'" "'content'" >imp.sql &&
	psql -At -f imp.sql
}
# a synthetic queue_log for occupancy: member 20 min, paused 10 of them, one 60 s call
cat >synth.queue_log <<'EOF'
1795300000|NONE|q1|Zed|ADDMEMBER|
1795300100|c1|q1|NONE|ENTERQUEUE||100|1
1795300105|c1|q1|Zed|CONNECT|5|m1|5
1795300165|c1|q1|Zed|COMPLETECALLER|5|60|1
1795300200|NONE|q1|Zed|PAUSE|lunch
1795300800|NONE|q1|Zed|UNPAUSE|
1795301000|c2|q1|NONE|ENTERQUEUE||101|1
1795301003|c2|q1|NONE|EXITWITHKEY|5|1|1|3
1795301200|NONE|q1|Zed|REMOVEMEMBER|
EOF
# the simplified E-model of docs/metrics.md, written again in awk: one "lat jit loss mos" per line in,
# the absolute difference between the given MOS and the recomputed one out
MOS_AWK='{ el = $1 + 2 * $2 + 10; r = (el < 160) ? 93.2 - el / 40 : 93.2 - (el - 120) / 10; r -= 2.5 * $3;
	m = (r < 0) ? 1 : (r > 100) ? 4.5 : 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r);
	if (m > 4.5) m = 4.5; if (m < 1) m = 1; d = m - $4; print (d < 0 ? -d : d) }'
# what queue_log says per visit: callid queue outcome wait_s (answered: CONNECT holdtime)
qlog_visits() {
	awk -F'|' '$5 == "CONNECT" { print $2, $3, "answered", $6 }
		$5 == "ABANDON" { print $2, $3, "abandoned", $8 }
		$5 == "EXITWITHTIMEOUT" { print $2, $3, "timeout", $8 }' "$QLOG" | sort
}
visits_sql() { # SOURCE NODE: the same from queue_call
	psql -At -F ' ' -c "select caller_uniqueid, queue, outcome, wait_s from queue_call
		where source = '$1' and node = '$2' and outcome <> 'waiting'" | sort
}
stats_sql() { # SOURCE: the same columns from cdrflow_queue_stats
	psql -At -c "select queue, entered, answered, abandoned, timeouts, round(asa_s::numeric, 3), max_wait_s,
		round(avg_abandon_wait_s::numeric, 3), round(aht_s::numeric, 3)
		from cdrflow_queue_stats('2026-11-21 00:00Z', '2026-11-22 00:00Z', '1 day', 0, 5, '$1') order by queue"
}
qlog_stats() { # queue entered answered abandoned timeouts ASA max_wait avg_abandon_wait AHT, from queue_log
	awk -F'|' '{ q[$3] = 1 }
		$5 == "ENTERQUEUE" { n[$3]++ }
		$5 == "CONNECT" { a[$3]++; h[$3] += $6; if ($6 > mx[$3]) mx[$3] = $6 }
		$5 == "ABANDON" { ab[$3]++; abw[$3] += $8; if ($8 > mx[$3]) mx[$3] = $8 }
		$5 == "EXITWITHTIMEOUT" { t[$3]++; if ($8 > mx[$3]) mx[$3] = $8 }
		$5 ~ /^COMPLETE/ { tk[$3] += $7; c[$3]++ }
		function f(x, n) { return n ? sprintf("%.3f", x / n) : "" }
		END { for (k in n) printf "%s|%d|%d|%d|%d|%s|%d|%s|%s\n", k, n[k], a[k], ab[k], t[k],
			f(h[k], a[k]), mx[k], f(abw[k], ab[k]), f(tk[k], c[k]) }' "$QLOG" | sort
}
qlog_agents() { # agent answered talk ring_no_answer, from queue_log
	awk -F'|' '$5 == "CONNECT" { a[$4]++; s[$4] = 1 } $5 ~ /^COMPLETE/ { t[$4] += $7; s[$4] = 1 }
		$5 == "RINGNOANSWER" { r[$4]++; s[$4] = 1 }
		END { for (k in s) printf "%s|%d|%d|%d\n", k, a[k], t[k], r[k] }' "$QLOG" | sort
}
agents_sql() { # SOURCE
	psql -At -c "select agent, answered, coalesce(talk_s, 0), ring_no_answer
		from cdrflow_agent_stats('2026-11-21 00:00Z', '2026-11-22 00:00Z', '1 day', '$1', 's04_queue') order by agent"
}

test_expect_success 'the RTP and queue scenarios load in one run' '
	( for s in s03_sip_rtp s03b_sip_rtp_impaired s04_queue; do
		"$STRIP" "$(capture_path $s)" $s.raw &&
		cdrflow_collector --replay $s.raw --spool spool --node $s >/dev/null || exit 1
	done ) &&
	"$ETL" --once -c etl.yaml --spool spool >out 2>&1 &&
	cat out && grep "^etl: " out &&
	test "$(q "select count(*) from qos_leg")" -gt 0 &&
	test "$(q "select count(*) from queue_call")" -gt 0
'

test_expect_success 'every RTCP event and report block is counted once, per leg and direction' '
	( for s in s03_sip_rtp s03b_sip_rtp_impaired; do
		sent=$(grep -c "^Event: RTCPSent" $s.raw) && recv=$(grep -c "^Event: RTCPReceived" $s.raw) &&
		test "$sent" -gt 0 &&
		test "$(q "select sum(events) from qos_leg where node = '"'"'$s'"'"' and direction = '"'"'rx'"'"'")" = $sent &&
		test "$(q "select sum(events) from qos_leg where node = '"'"'$s'"'"' and direction = '"'"'tx'"'"'")" = $recv || exit 1
	done )
'

test_expect_success 'jitter is IAJitter/clock (clock from the sender reports), loss is FractionLost/2.56' '
	( for s in s03_sip_rtp s03b_sip_rtp_impaired; do
		"$DIGEST" $s.raw >$s.digest &&
		psql -At -F " " -c "select uniqueid, direction, reports, coalesce(jitter_ms * clock_rate / 1000.0, 0),
			coalesce(loss_pct_fraction, 0), clock_rate, clock_source
			from qos_leg where node = '"'"'$s'"'"' order by uniqueid collate \"C\", 2" >$s.ours &&
		test_line_count $s.ours = "$(wc -l <$s.digest)" &&
		paste -d " " $s.digest $s.ours >$s.both &&
		awk '"'"'function abs(x) { return x < 0 ? -x : x }
			$1 != $7 || $2 != $8 || $3 != $9 || abs($4 - $10) > 1e-6 || abs($5 - $11) > 1e-6 ||
			$13 != "sr" || ($6 > 0 && abs($6 - $12) > 0.05 * $12) { print "mismatch:", $0; bad = 1 }
			END { exit bad }'"'"' $s.both || exit 1
	done )
'

test_expect_success 'MOS is the documented E-model of the stored inputs' '
	psql -At -F " " -c "select latency_ms, jitter_ms, loss_pct, mos from qos_leg where mos is not null" >mos.in &&
	test_line_count mos.in -gt 20 &&
	awk "$MOS_AWK" mos.in | awk "\$1 > 1e-9 { bad = 1 } END { exit bad }" &&
	test "$(q "select cdrflow_rtcp_cumlost('"'"'16777215'"'"') || '"'"' '"'"' || cdrflow_rtcp_cumlost('"'"'8388608'"'"')
		|| '"'"' '"'"' || cdrflow_rtcp_cumlost('"'"'7'"'"')")" = "-1 -8388608 7" &&
	test "$(q "select round(cdrflow_mos(0, 0, 0)::numeric, 2), cdrflow_mos(500, 100, 50), cdrflow_mos(0, 0, 100)")" = "4.40|1|1"
'

test_expect_success 'clean network (s03): no loss, MOS in the band of a perfect G.711 path' '
	q "select count(*) from qos_leg where node = '"'"'s03_sip_rtp'"'"'" >n && test "$(cat n)" -ge 8 &&
	test "$(q "select count(*) from qos_leg where node = '"'"'s03_sip_rtp'"'"' and loss_pct = 0
		and jitter_ms < 5 and rtt_ms < 10 and mos between 4.3 and 4.5")" = "$(cat n)"
'

test_expect_success 'impaired relay (s03b, 3 % loss, 40+-10 ms): loss, delay, jitter and a lower MOS' '
	q "select count(*) from qos_leg where node = '"'"'s03b_sip_rtp_impaired'"'"'" >n && test "$(cat n)" -ge 6 &&
	test "$(q "select count(*) from qos_leg where node = '"'"'s03b_sip_rtp_impaired'"'"'
		and loss_pct between 1 and 12 and rtt_ms between 50 and 130 and jitter_ms between 1 and 30
		and mos between 3.0 and 4.3")" = "$(cat n)" &&
	test "$(q "select bool_and(i.max < c.min) from
		(select max(worst_mos) from call where node = '"'"'s03b_sip_rtp_impaired'"'"') i,
		(select min(worst_mos) from call where node = '"'"'s03_sip_rtp'"'"') c")" = t
'

test_expect_success 'each call carries its worst leg MOS; calls without RTP have none' '
	test "$(q "select count(*) from call where node like '"'"'s03%'"'"' and worst_mos is null")" = 0 &&
	test "$(q "select count(*) from call c where node like '"'"'s03%'"'"' and worst_mos is distinct from
		(select min(mos) from qos_leg q where q.node = c.node and q.linkedid = any(c.linkedids))")" = 0 &&
	test "$(q "select count(*) from call where node = '"'"'s04_queue'"'"' and worst_mos is not null")" = 0 &&
	test "$(q "select count(*) from qos_leg where node like '"'"'s03%'"'"' and call_id is null")" = 0
'

test_expect_success 'queue visits from AMI: outcome and wait of each equal queue_log' '
	qlog_visits >visits.log &&
	test_line_count visits.log = "$(grep -c "|ENTERQUEUE|" "$QLOG")" &&
	visits_sql ami s04_queue >visits.ami &&
	test_cmp visits.log visits.ami
'

test_expect_success 'per queue: entered, answered, abandoned, timeouts, ASA, max wait, AHT equal queue_log' '
	qlog_stats >stats.log &&
	stats_sql ami >stats.ami &&
	test_cmp stats.log stats.ami
'

test_expect_success 'per agent: answered, talk time, ring-no-answer equal queue_log' '
	qlog_agents >agents.log &&
	agents_sql ami >agents.ami &&
	test_cmp agents.log agents.ami
'

test_expect_success 'queue_log import: every line once, its visits agree with the AMI ones' '
	test "$(import_qlog s04_queue "$QLOG")" = "$(wc -l <"$QLOG")" &&
	test "$(import_qlog s04_queue "$QLOG")" = 0 &&
	test "$(q "select count(*) from queue_call_compare where agrees")" = "$(grep -c "|ENTERQUEUE|" "$QLOG")" &&
	test "$(q "select count(*) from queue_call_compare where not agrees")" = 0 &&
	visits_sql queue_log s04_queue >visits.imp && test_cmp visits.log visits.imp &&
	stats_sql queue_log >stats.imp && test_cmp stats.log stats.imp &&
	agents_sql queue_log >agents.imp && test_cmp agents.log agents.imp
'

test_expect_success 'short abandons and the service level variants follow their definitions' '
	# S = the longest ABANDON wait in queue_log: every abandon becomes short
	s=$(awk -F"|" "\$5 == \"ABANDON\" && \$8 > m { m = \$8 } END { print m }" "$QLOG") &&
	ab=$(grep -c "|ABANDON|" "$QLOG") &&
	test "$(q "select sum(short_abandoned), sum(abandoned), sum(entered) - sum(offered)
		from cdrflow_queue_stats('"'"'2026-11-21Z'"'"', '"'"'2026-11-22Z'"'"', '"'"'1 day'"'"', $s, 5)")" = "$ab|0|$ab" &&
	# T = 5 s: default SL = answered within T / (answered + abandoned after T)
	awk -F"|" -v T=5 "\$5 == \"CONNECT\" { a++; if (\$6 <= T) w++ } \$5 == \"ABANDON\" && \$8 > T { l++ }
		END { printf \"%.4f\n\", 100 * w / (a + l) }" "$QLOG" >sl.log &&
	q "select round((100.0 * sum(answered_within_t) / sum(answered + abandoned_after_t))::numeric, 4)
		from cdrflow_queue_stats('"'"'2026-11-21Z'"'"', '"'"'2026-11-22Z'"'"', '"'"'1 day'"'"', 0, 5)" >sl.ami &&
	test_cmp sl.log sl.ami &&
	test "$(q "select count(*) from cdrflow_queue_stats('"'"'2026-11-21Z'"'"', '"'"'2026-11-22Z'"'"', '"'"'1 day'"'"', 0, 5)
		where sl_pct is null or sl2_pct < sl_pct or sl3_pct > sl_pct")" = 0
'

test_expect_success 'occupancy from membership and pause lines (queue_log)' '
	test "$(import_qlog synth synth.queue_log)" = 9 &&
	test "$(q "select attempts, answered, talk_s, available_s, occupancy_pct from cdrflow_agent_stats(
		'"'"'2026-11-21Z'"'"', '"'"'2026-11-22Z'"'"', '"'"'1 day'"'"', '"'"'queue_log'"'"', '"'"'synth'"'"')")" = "1|1|60|600|10" &&
	test "$(q "select outcome, wait_s from queue_call where node = '"'"'synth'"'"' and caller_uniqueid = '"'"'c2'"'"'")" = "exit_key|3" &&
	test "$(q "select count(*) from cdrflow_agent_stats('"'"'2026-11-21Z'"'"', '"'"'2026-11-22Z'"'"', '"'"'1 day'"'"')
		where occupancy_pct is not null")" = 0
'

test_expect_success 'batches of 100 events give the same visits, attempts and QoS rows as one batch, digit for digit (0072)' '
	cdrflow_collector --replay s04_queue.raw --spool small --node s04_small >/dev/null &&
	cdrflow_collector --replay s03b_sip_rtp_impaired.raw --spool small --node s03b_small >/dev/null &&
	"$ETL" --once -c small.yaml --spool small >out.small 2>&1 &&
	grep "^etl: " out.small &&
	test "$(sed -n "s/.*batches=\\([0-9]*\\).*/\\1/p" out.small)" -gt 20 &&
	cols="queue, caller_uniqueid, join_time, outcome, wait_s, hold_s, ring_s, agent, agent_uniqueid, talk_s, complete_reason, leave_time" &&
	psql -At -c "select $cols from queue_call where node = '"'"'s04_queue'"'"' and source = '"'"'ami'"'"' order by 2, 3" >one.qc &&
	psql -At -c "select $cols from queue_call where node = '"'"'s04_small'"'"' order by 2, 3" >small.qc &&
	test_line_count one.qc -gt 5 && test_cmp one.qc small.qc &&
	cols="queue, caller_uniqueid, agent, agent_uniqueid, outcome, called_at, connected_at, ring_ms, talk_s" &&
	psql -At -c "select $cols from queue_agent_call where node = '"'"'s04_queue'"'"' and source = '"'"'ami'"'"' order by 4" >one.qa &&
	psql -At -c "select $cols from queue_agent_call where node = '"'"'s04_small'"'"' order by 4" >small.qa &&
	test_cmp one.qa small.qa &&
	cols="uniqueid, direction, events, reports, fraction_lost_sum, cum_lost_first, cum_lost_last, ext_seq_first,
		ext_seq_last, jitter_ts_sum, rtt_n, rtt_sum_s, rtt_max_s, rtt_ms, latency_ms, clock_rate, r_factor, mos, call_id" &&
	psql -At -c "select $cols from qos_leg where node = '"'"'s03b_sip_rtp_impaired'"'"' order by 1, 2" >one.qos &&
	psql -At -c "select $cols from qos_leg where node = '"'"'s03b_small'"'"' order by 1, 2" >small.qos &&
	test_cmp one.qos small.qos &&
	psql -At -c "select call_id, worst_mos from call where node = '"'"'s03b_sip_rtp_impaired'"'"' order by 1" >one.call &&
	psql -At -c "select call_id, worst_mos from call where node = '"'"'s03b_small'"'"' order by 1" >small.call &&
	test_cmp one.call small.call
'

test_done
