#!/usr/bin/env bash
# Install (idempotently) every Debian 12 package cdrflow builds, tests or runs
# with.  Runs apt-get only when something is missing.  Needs root (or sudo).
set -euo pipefail
PACKAGES=(
	# build
	build-essential pkg-config clang libclang-rt-14-dev
	libyaml-dev libssl-dev liblzma-dev libpq-dev
	# report rendering (report/): XLSX, PDF via cairo + FreeType, CSV, the PDF font
	libxlsxwriter-dev libcairo2-dev libfreetype-dev libcsv-dev fonts-dejavu-core
	# delivery (report/mail.c, webhook.c): SMTP and HTTP through libcurl
	libcurl4-openssl-dev
	# the private warehouse cluster (scripts/pg.sh); Citus built from ../shared/vendor
	# for scripts/citus.sh needs the server headers (same version as the server) and these
	postgresql-15 postgresql-client-15 postgresql-server-dev-15 liblz4-dev libzstd-dev libkrb5-dev
	# tests and tools they drive
	libcmocka-dev python3 python3-yaml openssl xz-utils bc procps util-linux e2fsprogs
	# t1420: gcore (a core of the running collector: no secret in it)
	gdb
	# cron/ and systemd units (t5300): flock (util-linux), systemd-analyze verify, man pages
	systemd groff-base time
	# report tests: pdfinfo/pdftotext/pdftoppm, unzip -p for XLSX parts
	poppler-utils unzip
	# delivery tests: a real SMTP server (aiosmtpd, run by the system python3)
	python3-aiosmtpd
	# t5200 and bench-report: peak RSS of a streamed export (/usr/bin/time -v)
	time
	# the ETL's Kamailio source on MySQL/MariaDB (etl/kamdb.c)
	libmariadb-dev
	# t6100 and bench-kamailio: a real Kamailio (acc, dialog CDRs) on PostgreSQL and
	# MariaDB, SIPp as caller and callees, a private MariaDB server, ss(8)
	kamailio kamailio-postgres-modules kamailio-mysql-modules sip-tester mariadb-server iproute2
)
missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
# cdrflow runs its own private cluster (scripts/pg.sh): do not let the
# package create and start a system-wide one, unless the admin decided already
if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
	$SUDO mkdir -p /etc/postgresql-common
	echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.conf >/dev/null
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
