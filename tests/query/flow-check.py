#!/usr/bin/env python3
"""flow-check.py CAPTURE FLOW_OUTPUT: check the structure of a
"cdrflow-query flow" ladder against the CEL events of the raw AMI capture
(ami.raw or .xz) it was loaded from.

The call's linkedids are read from the ladder's header line ("linkedids
{a,b}"); the expected channels are every uniqueid that carried one of them
in the capture, and the expected events all CEL events of those uniqueids.
Checks (each failure is printed; exit 1 if any):
  - one legend line per channel, same uniqueids, names as CHAN_START had them
  - one column per channel in the column header, labels in legend order
  - one CHAN_START row per CHAN_START event, marked '+' in its column
  - one HANGUP row per HANGUP event, marked 'X', with the cause from Extra
  - every BLINDTRANSFER/ATTENDEDTRANSFER event has a row marked 'T' with an
    arrow (~) toward the transferee when it is a column of the ladder
  - a BRIDGE_ENTER/EXIT row naming a peer ("X <-> Y") has 'o' in both
    columns and '=' (enter) or '-' (exit) in between
  - relative times start at +0.000s and never decrease
Prints "flow-check: channels=N rows=M transfers=T bridges=B" on success.
"""
import json
import lzma
import re
import sys


def cel_events(path):
    data = lzma.open(path).read() if path.endswith('.xz') else open(path, 'rb').read()
    for frame in data.decode('utf-8', 'replace').split('\r\n\r\n'):
        if 'Event: CEL' not in frame:
            continue
        ev = {}
        for line in frame.split('\r\n'):
            k, sep, v = line.partition(': ')
            if sep and k not in ev:
                ev[k] = v
        if ev.get('Event') == 'CEL':
            yield ev


def main():
    cap, flow = sys.argv[1], sys.argv[2]
    lines = open(flow, encoding='utf-8').read().split('\n')
    errors = []
    m = re.search(r'linkedids \{([^}]*)\}', lines[0]) or re.match(r'linkedid (\S+) ', lines[0])
    if not m:
        print('flow-check: no linkedids in the header line: %r' % lines[0])
        return 1
    linkedids = set(m.group(1).split(','))
    evs = list(cel_events(cap))
    uids = {e['UniqueID'] for e in evs if e.get('LinkedID') in linkedids}
    mine = [e for e in evs if e['UniqueID'] in uids]
    # legend
    legend = [re.match(r'  (\S+) += (.*) \((\S+)\)$', l) for l in lines]
    legend = [x for x in legend if x]
    labels = [x.group(1) for x in legend]
    if {x.group(3) for x in legend} != uids or len(legend) != len(uids):
        errors.append('legend uniqueids %s, capture %s' % (sorted(x.group(3) for x in legend), sorted(uids)))
    starts = {e['UniqueID']: e['Channel'] for e in mine if e['EventName'] == 'CHAN_START'}
    for x in legend:
        if x.group(3) in starts and starts[x.group(3)] != x.group(2):
            errors.append('legend %s = %s, CHAN_START had %s' % (x.group(1), x.group(2), starts[x.group(3)]))
    label_of = {x.group(3): x.group(1) for x in legend}
    # the column header: the first line after the blank line under the legend
    try:
        hi = lines.index('', 1) + 1
    except ValueError:
        print('flow-check: no blank line after the legend')
        return 1
    head = lines[hi]
    col = {}
    for mm in re.finditer(r'[A-Z]+', head):
        col[mm.group(0)] = mm.start()
    if list(col) != labels:
        errors.append('column header %r does not list %s' % (head, labels))
    rows = [l for l in lines[hi + 1:] if l.strip()]
    parsed = []
    for r in rows:
        mm = re.match(r'^ *\+(\d+\.\d{3})s  (.*?)  ([A-Z_]+ [A-Z]+.*)$', r)
        if not mm:
            errors.append('unparsable row %r' % r)
            continue
        parsed.append((float(mm.group(1)), r, mm.group(3)))
    t = [p[0] for p in parsed]
    if t and (t[0] != 0.0 or any(b < a for a, b in zip(t, t[1:]))):
        errors.append('relative times do not start at 0 or decrease: %s' % t[:10])

    def at(row, label):
        p = col[label]
        return row[p] if p < len(row) else ' '

    def rows_of(name):
        return [p for p in parsed if p[2].split()[0] == name]
    # CHAN_START
    cs = rows_of('CHAN_START')
    want = [e for e in mine if e['EventName'] == 'CHAN_START']
    if len(cs) != len(want):
        errors.append('%d CHAN_START rows, capture has %d' % (len(cs), len(want)))
    for _, r, note in cs:
        lab = note.split()[1]
        if lab not in col or at(r, lab) != '+':
            errors.append('CHAN_START row without + in column %s: %r' % (lab, r))
    # HANGUP
    hu = rows_of('HANGUP')
    want = [e for e in mine if e['EventName'] == 'HANGUP']
    if len(hu) != len(want):
        errors.append('%d HANGUP rows, capture has %d' % (len(hu), len(want)))
    causes = sorted(str(json.loads(e['Extra']).get('hangupcause')) for e in want if e.get('Extra'))
    got = sorted(re.search(r'cause (\d+)', n).group(1) for _, _, n in hu if 'cause' in n)
    if causes != got:
        errors.append('hangup causes %s, capture %s' % (got, causes))
    for _, r, note in hu:
        lab = note.split()[1]
        if at(r, lab) != 'X':
            errors.append('HANGUP row without X in column %s: %r' % (lab, r))
    # transfers
    ntr = 0
    for kind in ('BLINDTRANSFER', 'ATTENDEDTRANSFER'):
        want = [e for e in mine if e['EventName'] == kind]
        got = rows_of(kind)
        ntr += len(got)
        if len(got) != len(want):
            errors.append('%d %s rows, capture has %d' % (len(got), kind, len(want)))
        for e, (_, r, note) in zip(want, got):
            lab = note.split()[1]
            if label_of.get(e['UniqueID']) != lab or at(r, lab) != 'T':
                errors.append('%s row without T in the column of %s: %r' % (kind, e['Channel'], r))
            tee = json.loads(e['Extra']).get('transferee_channel_uniqueid')
            if tee in label_of and '~' not in r:
                errors.append('%s row without an arrow to the transferee: %r' % (kind, r))
    # bridges with a peer
    nbr = 0
    for _, r, note in parsed:
        mm = re.match(r'(BRIDGE_ENTER|BRIDGE_EXIT) ([A-Z]+) <-> ([A-Z]+)', note)
        if not mm:
            continue
        nbr += 1
        a, b = col[mm.group(2)], col[mm.group(3)]
        lo, hi2 = min(a, b), max(a, b)
        fill = '=' if mm.group(1) == 'BRIDGE_ENTER' else '-'
        if r[a] != 'o' or r[b] != 'o' or set(r[lo + 1:hi2]) != {fill}:
            errors.append('bridge row not drawn between %s and %s: %r' % (mm.group(2), mm.group(3), r))
    for e in errors:
        print('flow-check: ' + e)
    if errors:
        return 1
    print('flow-check: channels=%d rows=%d transfers=%d bridges=%d' % (len(legend), len(parsed), ntr, nbr))
    return 0


if __name__ == '__main__':
    sys.exit(main())
