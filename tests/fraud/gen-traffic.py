#!/usr/bin/env python3
"""gen-traffic.py - synthetic legs for the fraud rules, as the ETL would load them.

  gen-traffic.py sql [SCENARIO...]   SQL for psql: per batch one transaction that
                                     inserts the legs into cdr and cdr_batch and
                                     runs cdrflow_after_batch (the analytics hook)
  gen-traffic.py expect [SCENARIO...] the alerts each scenario must produce, one
                                     line per (rule, tenant):
                                     "rule tenant count subject,subject..."
                                     (count 0 = must not trigger)
  gen-traffic.py ami-states          a raw AMI stream (banner + events) with
                                     PeerStatus/ContactStatus/Registry/
                                     DeviceStateChange transitions, for
                                     cdrflow-collector --replay
  gen-traffic.py list                the scenario names

Every scenario has a tenant whose traffic must trigger its rule (suffix -y)
and one whose traffic must not (suffix -n: below the threshold, in hours,
not international, spread out ...).  The rule parameters the expectations
assume are those of tests/fraud/rules.yaml (tests t4300 and t4310; repeated in
RULES below so a change of one shows up as a failing test, not silently).
Each scenario uses its own tenants and its own day, so they do not interact.
"""
import datetime as dt
import re
import sys

UTC = dt.timezone.utc

# what the YAML of the test configures (documentation for the expectations)
RULES = {
    "hot": "hotlist prefixes +882 +881 +239, snooze 1h",
    "new-country": "new_country exclude [GB]",
    "night-intl": "out_of_hours Europe/Berlin 08:00-18:00 mon-fri per extension",
    "intl-parallel": "concurrent_intl per extension max 2",
    "trunk-cps": "cps per trunk max 3 window 1s",
    "short-burst": "short_calls per extension max_billsec 6 count 5 window 5m",
    "seq-dial": "sequential per extension count 5 window 10m step 1",
    "cost-rate": "cost_velocity per tenant max 50 window 1h",
    "wangiri": "wangiri count 5 window 10m max_ring 5 prefix_digits 8",
    "allowance": "allowance levels 80 100; tenants al-y 10 min, al-n 100 min",
    "tenant_concurrent": "tenants tc-y, tc-n max_concurrent 3",
    "tenant_cps": "tenants tp-y, tp-n max_cps 2",
}


class Gen:
    def __init__(self):
        self.batches = []  # list of lists of legs
        self.expect = []   # (rule, tenant, count, [subjects])
        self.n = 0

    def batch(self):
        self.batches.append([])
        return self.batches[-1]

    def leg(self, b, tenant, start, src, dst, *, dur=30, ring=2, answered=True, ctx="internal",
            trunk="SIP/carrier", chan=None, disposition=None, sell=None, linkedid=None):
        """One outbound (ctx internal) or inbound (ctx did) leg; dur = billsec when answered."""
        self.n += 1
        uid = "gen-%d.%d" % (int(start.timestamp()), self.n)
        answer = start + dt.timedelta(seconds=ring) if answered else None
        end = (answer + dt.timedelta(seconds=dur)) if answered else start + dt.timedelta(seconds=ring)
        billsec = dur if answered else 0
        duration = int((end - start).total_seconds())
        if ctx == "did":
            channel = chan or "%s-%08x" % (trunk, self.n)
            dstchannel = ""
        else:
            channel = chan or "PJSIP/%s-%08x" % (src, self.n)
            dstchannel = "%s-%08x" % (trunk, self.n)
        # the facts cdrflow-etl stores with a leg (etl/legclass.c) under the
        # test's configuration: contexts did/internal, no trunk globs, no
        # numbering plan (every E.164 number is international)
        direction = "inbound" if ctx == "did" else "outbound"
        src_e164, dst_e164 = e164(src), e164(dst)
        b.append(dict(calldate=start, answer=answer, end=end, src=src, dst=dst, dcontext=ctx,
                      channel=channel, dstchannel=dstchannel, lastapp="Dial", duration=duration,
                      billsec=billsec, disposition=disposition or ("ANSWERED" if answered else "NO ANSWER"),
                      accountcode=tenant, uniqueid=uid, linkedid=linkedid or uid, tenant=tenant,
                      sequence=self.n, sell_cost=sell, direction=direction,
                      trunk=device(channel if direction == "inbound" else dstchannel or channel),
                      src_e164=src_e164, dst_e164=dst_e164,
                      src_intl=src_e164 is not None, dst_intl=dst_e164 is not None))
        return uid

    def exp(self, rule, tenant, count, subjects=()):
        self.expect.append((rule, tenant, count, sorted(subjects)))


def e164(num):
    """A number written internationally (+ or 00) as '+digits', 7..15 digits; else None."""
    d = re.sub(r"[ ().-]", "", num)
    if d.startswith("+"):
        d = d[1:]
    elif d.startswith("00") and d[2:3] not in ("", "0"):
        d = d[2:]
    else:
        return None
    return "+" + d if d.isdigit() and 7 <= len(d) <= 15 else None


def device(channel):
    """SIP/loop-00000012 -> SIP/loop (the trunk of a leg)."""
    return re.sub(r"-[0-9a-fA-F]+(;[0-9]+)?$", "", channel or "")


def t(day, hms, frac=0.0):
    """A UTC time on 2026-03-<day> (2026-03-02 is a Monday)."""
    h, m, s = (int(x) for x in hms.split(":"))
    return dt.datetime(2026, 3, day, h, m, s, tzinfo=UTC) + dt.timedelta(seconds=frac)


S = dt.timedelta(seconds=1)
M = dt.timedelta(minutes=1)


def sc_hot(g):
    b = g.batch()
    g.leg(b, "hot-y", t(2, "10:00:00"), "2001", "008821234567890")
    g.leg(b, "hot-y", t(2, "10:01:00"), "2001", "+2399912345", answered=False)
    g.leg(b, "hot-n", t(2, "10:00:00"), "2101", "00442079460000")
    g.leg(b, "hot-n", t(2, "10:02:00"), "2101", "004930123456")
    g.leg(b, "hot-n", t(2, "10:03:00"), "2101", "0882123")  # national, not +882
    g.exp("hot", "hot-y", 2, ["+8821234567890", "+2399912345"])
    g.exp("hot", "hot-n", 0)
    # snooze: the same number again 30 min later in another batch folds into
    # the first alert; 3 h later (> 1 h snooze after its end) is a new alert
    b = g.batch()
    g.leg(b, "hot-s", t(2, "11:00:00"), "2201", "00881631234567")
    b = g.batch()
    g.leg(b, "hot-s", t(2, "11:30:00"), "2201", "00881631234567")
    b = g.batch()
    g.leg(b, "hot-s", t(2, "14:30:00"), "2201", "00881631234567")
    g.exp("hot", "hot-s", 2, ["+881631234567", "+881631234567"])


def sc_new_country(g):
    b = g.batch()
    g.leg(b, "nc-y", t(3, "10:00:00"), "3001", "004930111111")
    g.leg(b, "nc-n", t(3, "10:00:00"), "3101", "004930111112")
    g.leg(b, "nc-n", t(3, "10:05:00"), "3101", "00442079460000")  # GB is excluded
    b = g.batch()
    g.leg(b, "nc-y", t(3, "11:00:00"), "3001", "004930111113")     # DE again: known
    g.leg(b, "nc-y", t(3, "11:01:00"), "3001", "0033123456789")    # FR: new
    g.leg(b, "nc-n", t(3, "11:00:00"), "3101", "004930111114")     # DE again
    g.leg(b, "nc-n", t(3, "11:02:00"), "3101", "004930111115")
    g.exp("new-country", "nc-y", 2, ["DE", "FR"])
    g.exp("new-country", "nc-n", 1, ["DE"])


def sc_night(g):
    b = g.batch()
    # 2026-03-07 is a Saturday; Berlin is UTC+1 in March (before the 29th)
    g.leg(b, "ooh-y", t(7, "11:00:00"), "4001", "0033123456789")   # Saturday noon
    g.leg(b, "ooh-y", t(9, "02:00:00"), "4002", "0033123456789")   # Monday 03:00
    g.leg(b, "ooh-n", t(9, "09:00:00"), "4101", "0033123456789")   # Monday 10:00
    g.leg(b, "ooh-n", t(9, "16:59:00"), "4101", "0033123456789")   # Monday 17:59
    g.leg(b, "ooh-n", t(9, "22:00:00"), "4102", "030123456")       # night, but national
    g.exp("night-intl", "ooh-y", 2, ["4001", "4002"])
    g.exp("night-intl", "ooh-n", 0)


def sc_parallel(g):
    # three overlapping international calls from one extension, the third
    # loaded one batch later (it ends last): the peak spans two batches
    b = g.batch()
    g.leg(b, "cc-y", t(10, "10:00:00"), "5001", "004930111111", dur=60)
    g.leg(b, "cc-y", t(10, "10:00:10"), "5001", "004930111112", dur=60)
    b = g.batch()
    g.leg(b, "cc-y", t(10, "10:00:20"), "5001", "004930111113", dur=300)
    # not: at most two at once, sequential ones, and three parallel national calls
    g.leg(b, "cc-n", t(10, "10:00:00"), "5101", "004930111111", dur=60)
    g.leg(b, "cc-n", t(10, "10:00:30"), "5101", "004930111112", dur=60)
    g.leg(b, "cc-n", t(10, "10:01:10"), "5101", "004930111113", dur=60)
    g.leg(b, "cc-n", t(10, "10:10:00"), "5102", "030111111", dur=60)
    g.leg(b, "cc-n", t(10, "10:10:01"), "5102", "030111112", dur=60)
    g.leg(b, "cc-n", t(10, "10:10:02"), "5102", "030111113", dur=60)
    g.exp("intl-parallel", "cc-y", 1, ["5001"])
    g.exp("intl-parallel", "cc-n", 0)


def sc_cps(g):
    base = t(11, "10:00:00")
    b = g.batch()
    g.leg(b, "cps-y", base, "6001", "030111111", trunk="SIP/trunky", dur=5)
    g.leg(b, "cps-y", base + 0.2 * S, "6002", "030111112", trunk="SIP/trunky", dur=5)
    b = g.batch()  # the same second, next batch
    g.leg(b, "cps-y", base + 0.5 * S, "6003", "030111113", trunk="SIP/trunky", dur=5)
    g.leg(b, "cps-y", base + 0.9 * S, "6004", "030111114", trunk="SIP/trunky", dur=5)
    # not: 5 attempts 0.4 s apart: never more than 3 in one second
    for i in range(5):
        g.leg(b, "cps-n", base + (0.4 * i) * S, "610%d" % i, "03011112%d" % i, trunk="SIP/trunkn", dur=5)
    g.exp("trunk-cps", "cps-y", 1, ["SIP/trunky"])
    g.exp("trunk-cps", "cps-n", 0)


def sc_short(g):
    base = t(12, "10:00:00")
    nums = ["030911111", "030755555", "030633333", "030522222", "030488888"]  # not sequential
    b = g.batch()
    for i in range(3):
        g.leg(b, "sc-y", base + i * 40 * S, "7001", nums[i], dur=2 + i)
    b = g.batch()
    for i in range(3, 5):
        g.leg(b, "sc-y", base + i * 40 * S, "7001", nums[i], dur=3)
    # not: 4 short + 3 long in 5 min; 5 short ones 7 min apart
    for i in range(4):
        g.leg(b, "sc-n", base + i * 30 * S, "7101", "03033333%d" % i, dur=3)
    for i in range(3):
        g.leg(b, "sc-n", base + (130 + i * 20) * S, "7101", "03034444%d" % i, dur=60)
    for i in range(5):
        g.leg(b, "sc-n", base + i * 7 * M, "7102", "03035555%d" % i, dur=2)
    g.exp("short-burst", "sc-y", 1, ["7001"])
    g.exp("short-burst", "sc-n", 0)


def sc_seq(g):
    base = t(13, "10:00:00")
    b = g.batch()
    for i in range(3):
        g.leg(b, "sq-y", base + i * M, "8001", "00493012345%02d" % (60 + i), answered=False)
    b = g.batch()
    for i in range(3, 5):
        g.leg(b, "sq-y", base + i * M, "8001", "00493012345%02d" % (60 + i), answered=False)
    # not: step 2; four in a row and the fifth 20 minutes later
    for i in range(5):
        g.leg(b, "sq-n", base + i * M, "8101", "00493012345%02d" % (60 + 2 * i), answered=False)
    for i in range(4):
        g.leg(b, "sq-n", base + i * M, "8102", "00493012346%02d" % (70 + i), answered=False)
    g.leg(b, "sq-n", base + 24 * M, "8102", "0049301234674", answered=False)
    g.exp("seq-dial", "sq-y", 1, ["8001"])
    g.exp("seq-dial", "sq-n", 0)


def sc_cost(g):
    # needs cdr.sell_cost (micro-units), which migration 0007 adds; the test
    # adds it itself when missing before running this scenario
    base = t(14, "10:00:00")
    b = g.batch()
    g.leg(b, "cv-y", base, "9001", "008821234567", sell=20_000_000)
    g.leg(b, "cv-y", base + 10 * M, "9001", "008821234568", sell=20_000_000)
    b = g.batch()
    g.leg(b, "cv-y", base + 50 * M, "9001", "008821234569", sell=15_000_000)
    # not: 40 in the first hour, 40 more two hours later
    g.leg(b, "cv-n", base, "9101", "008821234567", sell=20_000_000)
    g.leg(b, "cv-n", base + 30 * M, "9101", "008821234568", sell=20_000_000)
    g.leg(b, "cv-n", base + 150 * M, "9101", "008821234569", sell=40_000_000)
    g.exp("cost-rate", "cv-y", 1, ["cv-y"])
    g.exp("cost-rate", "cv-n", 0)


def sc_wangiri(g):
    base = t(16, "10:00:00")
    b = g.batch()
    for i in range(3):
        g.leg(b, "wg-y", base + i * 30 * S, "+22177123456%d" % i, "+4420794602%02d" % i, ctx="did",
              answered=False, ring=2)
    b = g.batch()
    for i in range(3, 6):
        g.leg(b, "wg-y", base + i * 30 * S, "+22177123456%d" % i, "+4420794602%02d" % i, ctx="did",
              answered=False, ring=2)
    # not: answered calls; long rings; only four short rings
    for i in range(6):
        g.leg(b, "wg-n", base + i * 30 * S, "+22177999456%d" % i, "+4420794603%02d" % i, ctx="did", dur=40)
    for i in range(6):
        g.leg(b, "wg-n", base + i * 30 * S, "+22177888456%d" % i, "+4420794604%02d" % i, ctx="did",
              answered=False, ring=20)
    for i in range(4):
        g.leg(b, "wg-n", base + i * 30 * S, "+22177777456%d" % i, "+4420794605%02d" % i, ctx="did",
              answered=False, ring=2)
    g.exp("wangiri", "wg-y", 1, ["+22177123"])
    g.exp("wangiri", "wg-n", 0)


def sc_allowance(g):
    base = t(17, "10:00:00")
    b = g.batch()  # 8.5 of 10 minutes: crosses 80 %
    g.leg(b, "al-y", base, "1201", "030111111", dur=300)
    g.leg(b, "al-y", base + 10 * M, "1201", "030111112", dur=210)
    g.leg(b, "al-n", base, "1301", "030111111", dur=3000)   # 50 of 100 minutes
    b = g.batch()  # +2 minutes: crosses 100 %
    g.leg(b, "al-y", base + 20 * M, "1201", "030111113", dur=120)
    b = g.batch()  # +1 minute: nothing new
    g.leg(b, "al-y", base + 30 * M, "1201", "030111114", dur=60)
    g.leg(b, "al-n", base + 30 * M, "1301", "030111114", dur=60)
    g.leg(b, "al-n", base + 31 * M, "1301", "030111115", answered=False)
    g.exp("allowance", "al-y", 2, ["2026-03:80%", "2026-03:100%"])
    g.exp("allowance", "al-n", 0)


def sc_tenant_limits(g):
    base = t(18, "10:00:00")
    b = g.batch()
    for i in range(4):  # four at once, one of them inbound
        g.leg(b, "tc-y", base + i * 5 * S, "1401", "03011111%d" % i, dur=120, ctx="did" if i == 3 else "internal")
    for i in range(3):  # three at once; then two more after they ended
        g.leg(b, "tc-n", base + i * 5 * S, "1501", "03011111%d" % i, dur=120)
    for i in range(2):
        g.leg(b, "tc-n", base + (200 + i) * S, "1501", "03011112%d" % i, dur=120)
    for i in range(3):  # three in 0.5 s
        g.leg(b, "tp-y", base + 0.2 * i * S, "1601", "03011113%d" % i, dur=10)
    for i in range(4):  # two, then two 1.5 s later
        g.leg(b, "tp-n", base + (0.2 * (i % 2) + 1.5 * (i // 2)) * S, "1701", "03011114%d" % i, dur=10)
    g.exp("tenant_concurrent", "tc-y", 1, ["tc-y"])
    g.exp("tenant_concurrent", "tc-n", 0)
    g.exp("tenant_cps", "tp-y", 1, ["tp-y"])
    g.exp("tenant_cps", "tp-n", 0)


SCENARIOS = {
    "hot": sc_hot, "new-country": sc_new_country, "night": sc_night, "parallel": sc_parallel,
    "cps": sc_cps, "short": sc_short, "seq": sc_seq, "wangiri": sc_wangiri, "allowance": sc_allowance,
    "tenant-limits": sc_tenant_limits, "cost": sc_cost,
}

COLS = ["calldate", "answer", "end", "clid", "src", "dst", "dcontext", "channel", "dstchannel", "lastapp",
        "lastdata", "duration", "billsec", "disposition", "accountcode", "uniqueid", "linkedid", "userfield",
        "sequence", "node", "tenant", "direction", "trunk", "src_e164", "dst_e164", "src_intl", "dst_intl"]


def lit(v):
    if v is None:
        return "NULL"
    if isinstance(v, dt.datetime):
        return "'%s'" % v.isoformat()
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return "'%s'" % str(v).replace("'", "''")


def emit_sql(g, out):
    out.write("SET client_min_messages = warning;\n")
    for b in g.batches:
        cols = list(COLS)
        with_cost = any(l["sell_cost"] is not None for l in b)
        if with_cost:
            cols.append("sell_cost")
        out.write("BEGIN;\n")
        for m in sorted({(l["calldate"].year, l["calldate"].month) for l in b}):
            out.write("SELECT cdrflow_ensure_month('%04d-%02d-01 00:00:00+00');\n" % m)
        out.write("CREATE TEMP TABLE IF NOT EXISTS cdr_batch (LIKE cdr INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;\n")
        out.write("CREATE TEMP TABLE IF NOT EXISTS call_batch (LIKE call INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;\n")
        rows = []
        for l in b:
            row = dict(l, clid='"" <%s>' % l["src"], lastdata="", userfield="", node="gen")
            rows.append("(" + ", ".join(lit(row[c]) for c in cols) + ")")
        out.write("INSERT INTO cdr_batch (%s) VALUES\n  %s;\n" % (", ".join('"end"' if c == "end" else c for c in cols),
                                                              ",\n  ".join(rows)))
        # a leg is stored once per (node, sequence) (0014_leg_once): number them after
        # what the node holds, as the engine's creation order would
        # the destination country: the longest prefix in the one country table
        out.write("UPDATE cdr_batch b SET dst_country = (SELECT c.iso FROM rollup_country_code c "
                  "WHERE b.dst_e164 LIKE '+' || c.prefix || '%' ORDER BY length(c.prefix) DESC LIMIT 1);\n")
        out.write("UPDATE cdr_batch SET sequence = sequence + "
                  "(SELECT coalesce(max(sequence), 0) FROM cdr WHERE node = 'gen');\n")
        out.write("INSERT INTO cdr SELECT * FROM cdr_batch;\n")
        out.write("SELECT cdrflow_after_batch('gen', 0, 0);\n")
        out.write("COMMIT;\n")


def ami_states(out):
    """A raw AMI stream with endpoint state transitions."""
    out.write("Asterisk Call Manager/9.0.0\r\n")
    ts = [1772445600.0]  # 2026-03-02 10:00:00 UTC

    def ev(name, **kv):
        ts[0] += 1.5
        lines = ["Event: %s" % name, "Privilege: system,all", "Timestamp: %.6f" % ts[0], "SystemName: lab"]
        lines += ["%s: %s" % (k, v) for k, v in kv.items()]
        out.write("\r\n".join(lines) + "\r\n\r\n")

    peer = dict(ChannelType="SIP", Peer="SIP/trunk1", Address="192.0.2.10:5060")
    ev("PeerStatus", PeerStatus="Reachable", Time="12", **peer)
    ev("PeerStatus", PeerStatus="Unreachable", Time="-1", **peer)       # down: alert
    ev("PeerStatus", PeerStatus="Unreachable", Time="-1", **peer)       # repeat: not stored
    ev("PeerStatus", PeerStatus="Reachable", Time="15", **peer)         # recovered: alert
    # a lagging peer is not unreachable
    lag = dict(ChannelType="SIP", Peer="SIP/trunk2", Address="192.0.2.11:5060")
    ev("PeerStatus", PeerStatus="Reachable", Time="20", **lag)
    ev("PeerStatus", PeerStatus="Lagged", Time="900", **lag)
    ev("PeerStatus", PeerStatus="Reachable", Time="30", **lag)
    contact = dict(URI="sip:alice@192.0.2.20:5060", AOR="alice", EndpointName="alice", RoundtripUsec="0")
    ev("ContactStatus", ContactStatus="Created", **contact)
    ev("ContactStatus", ContactStatus="Unreachable", **contact)         # alert
    ev("ContactStatus", ContactStatus="Reachable", **contact)           # recovered
    ev("Registry", ChannelType="SIP", Username="acme", Domain="sip.example.com", Status="Registered")
    ev("Registry", ChannelType="SIP", Username="acme", Domain="sip.example.com", Status="Rejected",
       Cause="403")                                                     # alert, stays down
    ev("DeviceStateChange", Device="PJSIP/bob", State="NOT_INUSE")
    ev("DeviceStateChange", Device="PJSIP/bob", State="INUSE")
    ev("DeviceStateChange", Device="PJSIP/bob", State="NOT_INUSE")
    ev("DeviceStateChange", Device="PJSIP/bob", State="UNAVAILABLE")    # alert
    ev("DeviceStateChange", Device="PJSIP/bob", State="UNAVAILABLE")    # repeat


def main(argv):
    if len(argv) < 2 or argv[1] not in ("sql", "expect", "ami-states", "list"):
        sys.stderr.write(__doc__)
        return 64
    if argv[1] == "list":
        print("\n".join(SCENARIOS))
        return 0
    if argv[1] == "ami-states":
        ami_states(sys.stdout)
        return 0
    names = argv[2:] or list(SCENARIOS)
    for n in names:
        if n not in SCENARIOS:
            sys.stderr.write("gen-traffic: unknown scenario %s\n" % n)
            return 64
    g = Gen()
    for n in names:
        SCENARIOS[n](g)
    if argv[1] == "sql":
        emit_sql(g, sys.stdout)
    else:
        for rule, tenant, count, subjects in g.expect:
            print("%s %s %d %s" % (rule, tenant, count, ",".join(subjects) or "-"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
