#!/usr/bin/env python3
"""expect-costs.py DECK.csv DIGITS BILLSEC START_UNIX -> "prefix cost" or "none"

An independent reading of docs/rating.md section 4 (longest prefix in force
at the call's start, increments rounded up, money rounded up to the micro-unit,
grace free) used by the tests to check the ETL's numbers.  Only the subset of
the deck format the tests use: decimal money, a/b increments, dates Y-m-d."""
import csv
import datetime
import sys
from decimal import Decimal, ROUND_CEILING


def main():
    deck, digits, billsec, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    best = None
    with open(deck, newline="") as f:
        for row in csv.DictReader(f):
            p = row["prefix"].replace("+", "").replace(" ", "")
            frm = int(datetime.datetime.strptime(row["effective_from"], "%Y-%m-%d")
                      .replace(tzinfo=datetime.timezone.utc).timestamp())
            to = row.get("effective_to") or ""
            to = int(datetime.datetime.strptime(to, "%Y-%m-%d").replace(tzinfo=datetime.timezone.utc)
                     .timestamp()) if to else None
            if digits.startswith(p) and frm <= start and (to is None or start < to):
                if best is None or len(p) > len(best[0]):
                    best = (p, row)
    if best is None:
        print("none")
        return
    p, row = best
    a, _, b = row["increment"].partition("/")
    a, b = int(a), int(b or a)
    grace = int(row.get("grace") or 0)
    if billsec == 0 or billsec <= grace:
        billed = 0
    elif billsec <= a:
        billed = a
    else:
        billed = a + -(-(billsec - a) // b) * b
    if billed == 0:
        cost = 0
    else:
        rate = Decimal(row["rate_per_min"]) * 1000000
        fee = Decimal(row.get("connect_fee") or "0") * 1000000
        cost = int(fee + (rate * billed / 60).to_integral_value(rounding=ROUND_CEILING))
    print(p, cost)


if __name__ == "__main__":
    main()
