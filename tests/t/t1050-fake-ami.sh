#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2034  # bodies are eval'ed later; test_description is read by test-lib.sh
test_description='tests/fake_ami.py: the scripted AMI server the collector tests rely on'
# shellcheck source-path=SCRIPTDIR source=../lib/test-lib.sh
. "$(dirname "$0")/../lib/test-lib.sh"

test_expect_success PYTHON 'fake_ami.py --self-test (login, MD5, faults, TLS, resume, log, throughput)' '
	"$PYTHON" "$FAKE_AMI" --self-test >selftest.out 2>&1
	rc=$?
	grep -E "^(not ok|# )" selftest.out
	test $rc = 0
'

test_expect_success PYTHON 'every capture parses into Event messages only, bytes intact' '
	for cap in "$CDRFLOW_SHARED"/captures/*/ami.raw "$TEST_ROOT"/tests/data/*.ami.raw.xz; do
		[ -r "$cap" ] || continue
		FAKE_AMI_DIR=$TEST_ROOT/tests "$PYTHON" - "$cap" <<-\PY || return 1
		import os, sys
		sys.path.insert(0, os.environ["FAKE_AMI_DIR"])
		import fake_ami
		blob, offs = fake_ami.read_capture(sys.argv[1])
		n = len(offs) - 1
		assert n > 0, "no events"
		for i in range(n):
		    ev = blob[offs[i]:offs[i + 1]]
		    assert ev.startswith(b"Event: "), (i, ev[:40])
		    assert ev.endswith(b"\r\n\r\n") and b"\r\n\r\n" not in ev[:-4], i
		print("%s: %d events, %d bytes" % (sys.argv[1], n, len(blob)))
		PY
	done
'

test_expect_success PYTHON 'the harness: test_cmp, wait_for and write_config' '
	printf "a\nb\n" >x && printf "a\nb\n" >y && test_cmp x y &&
	printf "a\nc\n" >y && ! test_cmp x y >/dev/null 9>&1 &&
	wait_for true 1 &&
	! wait_for false 0.3 9>/dev/null &&
	write_config c.yaml port=1234 auth=md5 node=n1 &&
	grep "^      port: 1234$" c.yaml &&
	grep "^    - name: n1$" c.yaml &&
	! write_config c2.yaml no_such_key=1 2>/dev/null
'

test_done
