#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='every program has a man page that documents every option of its --help and renders cleanly'
. "$(dirname "$0")/../lib/test-lib.sh"

PROGRAMS="cdrflow-collector cdrflow-etl cdrflow-report cdrflow-query cdrflow"
command -v groff >/dev/null 2>&1 && test_set_prereq GROFF

# the man page source with roff escapes for '-' and font changes removed
man_text() { sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$TEST_ROOT/docs/man/$1.1"; }

test_expect_success 'each program has a man page, installed by make install' '
	for p in $PROGRAMS; do
		test -x "$CDRFLOW_BUILD/$p" && test -s "$TEST_ROOT/docs/man/$p.1" || { echo "$p"; return 1; }
	done &&
	make -C "$TEST_ROOT" -n install DESTDIR=/inst 2>/dev/null | grep -q "install -m 644 docs/man/\\*.1 "
'

test_expect_success 'every long option of --help is in the man page' '
	for p in $PROGRAMS; do
		"$CDRFLOW_BUILD/$p" --help >help.$p 2>/dev/null || { echo "$p --help failed"; return 1; }
		man_text $p >man.$p &&
		for o in $(grep -o -- "--[a-z][a-z-]*" help.$p | sort -u); do
			grep -q -- "$o" man.$p || { echo "$p: $o not in docs/man/$p.1"; return 1; }
		done || return 1
	done
'

test_expect_success 'every command of --help usage is in the man page' '
	for p in cdrflow-etl cdrflow-report cdrflow-query; do
		for c in $(sed -n "s/^ *\\(usage:\\)\\{0,1\\} *$p \\([a-z][a-z-]*\\).*/\\2/p" help.$p | sort -u); do
			grep -q "$c" man.$p || { echo "$p: command $c not in docs/man/$p.1"; return 1; }
		done || return 1
	done
'

test_expect_success GROFF 'the man pages render without warnings' '
	for p in $PROGRAMS; do
		groff -man -Tascii -ww -z "$TEST_ROOT/docs/man/$p.1" 2>g.err && test ! -s g.err || { echo "$p"; cat g.err; return 1; }
	done
'

test_done
