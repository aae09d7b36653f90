#!/usr/bin/env bash
#
# t0100-docs: the documentation agrees with the code.
#
#   - every value of lib/exitcode.h is in docs/exit-codes.md with its number
#   - every option of --help (and of main.c's long_options) is in the man page
#     and in docs/collector.md; the --help copy in collector.md is verbatim
#   - every key path printed by --dump-config is in docs/configuration.md,
#     and the example configuration there loads
#   - the worked segment example in docs/segment-format.md is a valid segment
#   - the CLI contract: --help (exit 0, empty stderr), unknown option (exit 64,
#     message on stderr), --version (cdrflow-collector <VERSION>)
#
# Uses tests/lib/test-lib.sh when it exists; otherwise a minimal built-in
# harness that prints "# passed N failed M" and exits non-zero on failure.
# Needs a built collector: $CDRFLOW_BUILD/cdrflow-collector (default
# <repo>/build).  Writes only into a temporary directory.
#
# The checks live in functions (t0100_check_*) so that each test body is a
# single command and works with any test_expect_success implementation.

test_description='docs agree with the code (exit codes, options, config keys, segment example)'

t0100_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
: "${CDRFLOW_BUILD:=$t0100_root/build}"
export CDRFLOW_BUILD
t0100_bin=$CDRFLOW_BUILD/cdrflow-collector
t0100_docs=$t0100_root/docs
t0100_tmp=$(mktemp -d "${TMPDIR:-/tmp}/t0100.XXXXXX") || exit 1

if [ -f "$t0100_root/tests/lib/test-lib.sh" ]; then
	# shellcheck source=/dev/null
	. "$t0100_root/tests/lib/test-lib.sh"
else
	t0100_passed=0
	t0100_failed=0
	t0100_count=0
	t0100_eval () {
		eval "$1"
	}
	test_expect_success () {
		local title=$1 body=$2 out
		t0100_count=$((t0100_count + 1))
		out=$t0100_tmp/test-$t0100_count.out
		if (t0100_eval "$body") >"$out" 2>&1 </dev/null; then
			t0100_passed=$((t0100_passed + 1))
			echo "ok $t0100_count - $title"
		else
			t0100_failed=$((t0100_failed + 1))
			echo "not ok $t0100_count - $title"
			sed 's/^/#  /' "$out"
		fi
	}
	test_done () {
		echo "# passed $t0100_passed failed $t0100_failed"
		[ "$t0100_failed" -eq 0 ] && exit 0
		exit 1
	}
fi

# ---------------------------------------------------------------- helpers

t0100_fail () {
	echo "$*"
	return 1
}

# "NAME NUMBER" for every enumerator of lib/exitcode.h.
t0100_exit_codes () {
	sed -n 's/^[[:space:]]*\(EXIT_[A-Z_]*\)[[:space:]]*=[[:space:]]*\([0-9][0-9]*\).*/\1 \2/p' \
		"$t0100_root/lib/exitcode.h"
}

# Long option names (without --) accepted by getopt_long in collector/main.c.
t0100_main_long_options () {
	awk '/long_options\[\] = \{/ { on = 1; next }
	     on && /^\};/ { on = 0 }
	     on' "$t0100_root/collector/main.c" |
		sed -n 's/^[[:space:]]*{ "\([a-z][a-z-]*\)",.*/\1/p' | sort -u
}

# Long option names (without --) shown by --help.
t0100_help_long_options () {
	"$t0100_bin" --help | grep -o -- '--[a-z][a-z-]*' | sed 's/^--//' | sort -u
}

# Short options shown by --help ("-c, --config" -> "-c").
t0100_help_short_options () {
	"$t0100_bin" --help | sed -n 's/^ *\(-[A-Za-z]\), --.*/\1/p' | sort -u
}

# The man page source with roff escapes for '-' and font changes removed.
t0100_man_text () {
	sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$t0100_docs/man/cdrflow-collector.1"
}

# Does stdin mention option $1 as a whole word (--dump, not --dump-config)?
t0100_mentions () {
	grep -Eq -- "(^|[^A-Za-z0-9-])$1([^A-Za-z0-9-]|$)"
}

# Dotted key paths of a --dump-config YAML on stdin; list items as "list[]".
t0100_dump_paths () {
	awk '
	/^[[:space:]]*$/ { next }
	{
		line = $0
		match(line, /^ */); ind = RLENGTH; rest = substr(line, ind + 1)
		item = 0
		if (rest ~ /^- /) { rest = substr(rest, 3); ind += 2; item = 1 }
		key = rest; sub(/:.*/, "", key)
		while (n > 0 && sind[n] >= ind) n--
		if (item && n > 0 && skey[n] !~ /\[\]$/) {
			p = ""; for (i = 1; i <= n; i++) p = p (i > 1 ? "." : "") skey[i]
			print p
			skey[n] = skey[n] "[]"
		}
		p = ""; for (i = 1; i <= n; i++) p = p (i > 1 ? "." : "") skey[i]
		full = (p == "" ? key : p "." key)
		if (rest ~ /:$/) { n++; skey[n] = key; sind[n] = ind } else print full
	}' | sort -u
}

# Lines between two marker lines of file $1, without ``` fence lines.
t0100_between () {
	awk -v b="$2" -v e="$3" '$0 == e { on = 0 } on && !/^```/ { print } $0 == b { on = 1 }' "$1"
}

# ---------------------------------------------------------------- checks

t0100_check_prereqs () {
	local f
	[ -x "$t0100_bin" ] || t0100_fail "missing $t0100_bin (run make)" || return 1
	for f in exit-codes.md segment-format.md collector.md configuration.md man/cdrflow-collector.1; do
		[ -s "$t0100_docs/$f" ] || t0100_fail "missing docs/$f" || return 1
	done
}

t0100_check_exit_codes_documented () {
	local name num n
	t0100_exit_codes >"$t0100_tmp/codes"
	n=$(wc -l <"$t0100_tmp/codes")
	[ "$n" -ge 5 ] || t0100_fail "could not parse lib/exitcode.h ($n values)" || return 1
	while read -r name num; do
		grep -Eq "^\| *\`$name\` *\| *$num *\|" "$t0100_docs/exit-codes.md" ||
			t0100_fail "$name = $num is not in the table of docs/exit-codes.md" || return 1
	done <"$t0100_tmp/codes"
}

t0100_check_exit_codes_no_extra () {
	local name num
	t0100_exit_codes >"$t0100_tmp/codes"
	sed -n 's/^| *`\(EXIT_[A-Z_]*\)` *| *\([0-9][0-9]*\) *|.*/\1 \2/p' \
		"$t0100_docs/exit-codes.md" >"$t0100_tmp/doc-codes"
	[ -s "$t0100_tmp/doc-codes" ] || t0100_fail "no table rows in docs/exit-codes.md" || return 1
	while read -r name num; do
		grep -qx "$name $num" "$t0100_tmp/codes" ||
			t0100_fail "docs/exit-codes.md has $name = $num, lib/exitcode.h does not" || return 1
	done <"$t0100_tmp/doc-codes"
}

t0100_check_help () {
	local rc=0
	"$t0100_bin" --help >"$t0100_tmp/help.out" 2>"$t0100_tmp/help.err" || rc=$?
	[ "$rc" -eq 0 ] || t0100_fail "--help exited $rc" || return 1
	[ -s "$t0100_tmp/help.out" ] || t0100_fail "--help printed nothing" || return 1
	[ ! -s "$t0100_tmp/help.err" ] || t0100_fail "--help wrote to stderr: $(cat "$t0100_tmp/help.err")"
}

t0100_check_unknown_option () {
	local rc=0
	"$t0100_bin" --no-such-option >"$t0100_tmp/bad.out" 2>"$t0100_tmp/bad.err" || rc=$?
	[ "$rc" -eq 64 ] || t0100_fail "exit $rc, expected 64" || return 1
	[ -s "$t0100_tmp/bad.err" ] || t0100_fail "no message on stderr" || return 1
	[ ! -s "$t0100_tmp/bad.out" ] || t0100_fail "output on stdout: $(cat "$t0100_tmp/bad.out")"
}

t0100_check_version () {
	local expect actual
	expect="cdrflow-collector $(cat "$t0100_root/VERSION")"
	actual=$("$t0100_bin" --version) || t0100_fail "--version failed" || return 1
	[ "$actual" = "$expect" ] || t0100_fail "got \"$actual\", expected \"$expect\""
}

t0100_check_long_options_match () {
	t0100_main_long_options >"$t0100_tmp/opts-main"
	t0100_help_long_options >"$t0100_tmp/opts-help"
	[ "$(wc -l <"$t0100_tmp/opts-main")" -ge 5 ] || t0100_fail "could not parse long_options in main.c" || return 1
	diff -u "$t0100_tmp/opts-main" "$t0100_tmp/opts-help" ||
		t0100_fail "long_options (-) and --help (+) differ"
}

t0100_check_options_in_man () {
	local o
	t0100_man_text >"$t0100_tmp/man.txt"
	for o in $(t0100_help_long_options); do
		t0100_mentions "--$o" <"$t0100_tmp/man.txt" ||
			t0100_fail "--$o is not in docs/man/cdrflow-collector.1" || return 1
	done
	for o in $(t0100_help_short_options); do
		t0100_mentions "$o" <"$t0100_tmp/man.txt" ||
			t0100_fail "$o is not in docs/man/cdrflow-collector.1" || return 1
	done
}

t0100_check_man_no_extra () {
	t0100_help_long_options >"$t0100_tmp/opts-help"
	t0100_man_text | grep -o -- '--[a-z][a-z-]*' | sed 's/^--//' | sort -u >"$t0100_tmp/opts-man"
	comm -23 "$t0100_tmp/opts-man" "$t0100_tmp/opts-help" >"$t0100_tmp/opts-extra"
	[ ! -s "$t0100_tmp/opts-extra" ] ||
		t0100_fail "in the man page but not in --help: $(tr '\n' ' ' <"$t0100_tmp/opts-extra")"
}

t0100_check_options_in_collector_md () {
	local o
	for o in $(t0100_help_long_options); do
		t0100_mentions "--$o" <"$t0100_docs/collector.md" ||
			t0100_fail "--$o is not in docs/collector.md" || return 1
	done
}

t0100_check_help_verbatim () {
	"$t0100_bin" --help >"$t0100_tmp/help.out" || return 1
	t0100_between "$t0100_docs/collector.md" "<!-- help:begin -->" "<!-- help:end -->" >"$t0100_tmp/help.doc"
	diff -u "$t0100_tmp/help.doc" "$t0100_tmp/help.out" ||
		t0100_fail "docs/collector.md (-) differs from --help (+)"
}

t0100_check_man_renders () {
	if ! command -v groff >/dev/null 2>&1; then
		echo "groff not installed: not checked"
		return 0
	fi
	groff -man -Tascii -ww -z "$t0100_docs/man/cdrflow-collector.1" 2>"$t0100_tmp/groff.err" ||
		t0100_fail "groff failed: $(cat "$t0100_tmp/groff.err")" || return 1
	[ ! -s "$t0100_tmp/groff.err" ] || t0100_fail "groff warnings: $(cat "$t0100_tmp/groff.err")"
}

t0100_check_config_keys () {
	local path
	printf 'collector:\n  nodes:\n    - name: t0100\n      username: u\n' >"$t0100_tmp/one-node.yaml"
	env -u CDRFLOW_AMI_SECRET "$t0100_bin" -c "$t0100_tmp/one-node.yaml" --dump-config \
		>"$t0100_tmp/dump.yaml" || t0100_fail "--dump-config failed" || return 1
	t0100_dump_paths <"$t0100_tmp/dump.yaml" >"$t0100_tmp/paths"
	for path in spool collector.fsync collector.nodes 'collector.nodes[].name'; do
		grep -qxF "$path" "$t0100_tmp/paths" ||
			t0100_fail "could not parse --dump-config output (no $path): $(cat "$t0100_tmp/paths")" || return 1
	done
	while read -r path; do
		grep -qF "\`$path\`" "$t0100_docs/configuration.md" ||
			t0100_fail "$path is not in docs/configuration.md" || return 1
	done <"$t0100_tmp/paths"
}

t0100_check_config_example () {
	local leaf
	t0100_between "$t0100_docs/configuration.md" "<!-- example:begin -->" "<!-- example:end -->" \
		>"$t0100_tmp/example.yaml"
	[ -s "$t0100_tmp/example.yaml" ] || t0100_fail "no example between the markers" || return 1
	"$t0100_bin" -c "$t0100_tmp/example.yaml" --dump-config >"$t0100_tmp/example.dump" 2>"$t0100_tmp/example.err" ||
		t0100_fail "the example does not load: $(cat "$t0100_tmp/example.err")" || return 1
	[ ! -s "$t0100_tmp/example.err" ] || t0100_fail "the example warns: $(cat "$t0100_tmp/example.err")" || return 1
	t0100_dump_paths <"$t0100_tmp/example.dump" | sed 's/.*\.//' | sort -u >"$t0100_tmp/leaves"
	while read -r leaf; do
		grep -Eq "^[[:space:]#-]*$leaf:" "$t0100_tmp/example.yaml" ||
			t0100_fail "key $leaf is not shown in the example" || return 1
	done <"$t0100_tmp/leaves"
}

t0100_check_segment_example () {
	local seg=$t0100_tmp/spool/n/0000000000000001.seg b size expect actual
	awk '/^## Worked example/ { on = 1; next } /^## / { on = 0 } on' "$t0100_docs/segment-format.md" |
		grep -E '^[0-9a-f]{8}  [0-9a-f]{2} ' |
		sed -E 's/^[0-9a-f]{8}  //; s/   .*//' >"$t0100_tmp/hex"
	[ "$(wc -l <"$t0100_tmp/hex")" -ge 9 ] || t0100_fail "no hex dump found" || return 1
	mkdir -p "$t0100_tmp/spool/n"
	for b in $(cat "$t0100_tmp/hex"); do
		printf "\\x$b"
	done >"$seg"
	size=$(wc -c <"$seg")
	[ "$size" -eq 173 ] || t0100_fail "the example is $size bytes, expected 173" || return 1
	actual=$("$t0100_bin" --verify --spool "$t0100_tmp/spool") ||
		t0100_fail "--verify failed on the example: $actual" || return 1
	[ "$actual" = "records=1 segments=1 corrupt=0" ] || t0100_fail "--verify: $actual" || return 1
	expect=$(sed -n 's/.*reads the whole file back as `\([^`]*\)`.*/\1/p' "$t0100_docs/segment-format.md")
	[ -n "$expect" ] || t0100_fail "the expected --list line is not in the doc" || return 1
	actual=$("$t0100_bin" --list --spool "$t0100_tmp/spool") || t0100_fail "--list failed" || return 1
	[ "$actual" = "$expect" ] || t0100_fail "--list: \"$actual\", the doc says \"$expect\""
}

# ---------------------------------------------------------------- tests

test_expect_success 'the collector is built and the docs exist' 't0100_check_prereqs'
test_expect_success 'every exit code of lib/exitcode.h is in docs/exit-codes.md with its number' \
	't0100_check_exit_codes_documented'
test_expect_success 'docs/exit-codes.md lists no code that lib/exitcode.h lacks' 't0100_check_exit_codes_no_extra'
test_expect_success '--help exits 0 and writes nothing to stderr' 't0100_check_help'
test_expect_success 'an unknown option exits 64 with a message on stderr' 't0100_check_unknown_option'
test_expect_success '--version prints cdrflow-collector and the VERSION file' 't0100_check_version'
test_expect_success 'main.c long_options and --help list the same long options' 't0100_check_long_options_match'
test_expect_success 'every option of --help is in the man page' 't0100_check_options_in_man'
test_expect_success 'the man page documents no option the program lacks' 't0100_check_man_no_extra'
test_expect_success 'every option of --help is in docs/collector.md' 't0100_check_options_in_collector_md'
test_expect_success 'docs/collector.md has the --help text verbatim' 't0100_check_help_verbatim'
test_expect_success 'the man page renders without warnings' 't0100_check_man_renders'
test_expect_success 'every key of --dump-config is in docs/configuration.md' 't0100_check_config_keys'
test_expect_success 'the full example of docs/configuration.md loads and shows every key' \
	't0100_check_config_example'
test_expect_success 'the worked example of docs/segment-format.md is a valid segment' \
	't0100_check_segment_example'

rm -rf "$t0100_tmp"
test_done
