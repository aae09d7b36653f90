#!/usr/bin/env python3
"""cdrcsv.py - expectations for t5300 derived from the captures' own cdr.csv
(Asterisk's Master.csv rows: loguniqueid, loguserfield, newcdrcolumns).

  cdrcsv.py linkedids FILE...             number of distinct linkedids
  cdrcsv.py linkedid-list FILE...         the distinct linkedids, one a line
  cdrcsv.py dst-linkedids PREFIX FILE...  distinct linkedids of rows whose dst,
                                          in international form (+CC... or
                                          00CC...), starts with +PREFIX
  cdrcsv.py dial FILE...                  "CALLS ANSWERED": dial legs (a
                                          dstchannel, or lastapp Dial/Queue)
                                          and those ANSWERED
  cdrcsv.py trunk TRUNK FILE...           rows whose channel or dstchannel is
                                          on TRUNK (name minus -hex;n suffix)
  cdrcsv.py rows FILE...                  number of rows
"""
import csv
import re
import sys


def rows(files):
    for f in files:
        with open(f, newline='') as fh:
            for r in csv.reader(fh):
                if len(r) >= 21:
                    yield r


def trunk(ch):
    return re.sub(r'-[0-9a-fA-F]+(;[0-9]+)?$', '', ch)


def intl(num):
    n = re.sub(r'[ ().-]', '', num)
    if n.startswith('+'):
        return n[1:]
    if n.startswith('00'):
        return n[2:]
    return None


def main(argv):
    cmd = argv[1]
    if cmd == 'linkedids':
        print(len({r[19] for r in rows(argv[2:])}))
    elif cmd == 'linkedid-list':
        print('\n'.join(sorted({r[19] for r in rows(argv[2:])})))
    elif cmd == 'dst-linkedids':
        p = argv[2].lstrip('+').rstrip('*')
        print(len({r[19] for r in rows(argv[3:]) if (intl(r[2]) or '').startswith(p)}))
    elif cmd == 'dial':
        d = [r for r in rows(argv[2:]) if r[6] or r[7] in ('Dial', 'Queue')]
        print(len(d), sum(1 for r in d if r[14] == 'ANSWERED'))
    elif cmd == 'trunk':
        print(sum(1 for r in rows(argv[3:]) if argv[2] in (trunk(r[5]), trunk(r[6]))))
    elif cmd == 'rows':
        print(sum(1 for _ in rows(argv[2:])))
    else:
        sys.exit('unknown command ' + cmd)


if __name__ == '__main__':
    main(sys.argv)
