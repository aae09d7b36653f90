#!/usr/bin/env bash
# A private Citus cluster for the tests and the bench: a coordinator and two
# workers on unix sockets in one directory, registered with each other.
# Like scripts/pg.sh, nothing else on the machine is touched.
#
#   scripts/citus.sh start DIR   build Citus if needed, create (first time) and
#                                start the three nodes; prints the PG* exports of
#                                the coordinator (eval "$(scripts/citus.sh start DIR)")
#   scripts/citus.sh stop DIR    stop the three nodes (fast shutdown)
#   scripts/citus.sh env DIR     print the coordinator's PG* exports
#   scripts/citus.sh build       only build (or find) Citus; prints its bin directory
#
# Citus is not packaged in Debian 12.  When the server's own pkglibdir has no
# citus.so, it is built from ../shared/vendor/citus-13.2.2.tar.gz (override:
# CDRFLOW_CITUS_TARBALL) into a private PostgreSQL tree: a copy of the
# installed PostgreSQL 15 (bin, lib, share; PostgreSQL finds share and lib
# relative to its binaries) with Citus installed into it, in
# CDRFLOW_CITUS_PREFIX (default: build-citus/ of the checkout), rebuilt when
# the installed PostgreSQL's version changes.  About 40 s on 2 cores.
#
# Ports: CDRFLOW_PGPORT (default 54340) for the coordinator, the next two for
# the workers, chosen when DIR is first started and kept in DIR/port.  Exit codes: 0 ok, 64 usage, 69 PostgreSQL or a node cannot
# be started, 70 the build failed (its log is printed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-}
dir=${2:-}
usage() { echo "usage: $0 start|stop|env DIR | build" >&2; exit 64; }
[ -n "$cmd" ] || usage
[ "$cmd" = build ] || [ -n "$dir" ] || usage

sysbin=$(ls -d /usr/lib/postgresql/15/bin 2>/dev/null || true)
[ -x "$sysbin/postgres" ] || { echo "citus.sh: PostgreSQL 15 server binaries not found (scripts/install-deps.sh)" >&2; exit 69; }
prefix=${CDRFLOW_CITUS_PREFIX:-$root/build-citus}
tarball=${CDRFLOW_CITUS_TARBALL:-$root/../shared/vendor/citus-13.2.2.tar.gz}

# The bin directory of a PostgreSQL 15 that can load Citus.
citus_bindir() {
	if [ -f "$("$sysbin/pg_config" --pkglibdir)/citus.so" ]; then
		echo "$sysbin"
		return
	fi
	local version
	version=$("$sysbin/postgres" --version)
	if [ -f "$prefix/usr/lib/postgresql/15/lib/citus.so" ] && [ "$(cat "$prefix/pg-version" 2>/dev/null)" = "$version" ]; then
		echo "$prefix/usr/lib/postgresql/15/bin"
		return
	fi
	build_private "$version" >&2
	echo "$prefix/usr/lib/postgresql/15/bin"
}

build_private() {
	local version=$1 src log
	[ -f "$tarball" ] || { echo "citus.sh: $tarball not found" >&2; exit 70; }
	command -v pg_config >/dev/null && [ -d "$(pg_config --includedir-server)" ] ||
		{ echo "citus.sh: postgresql-server-dev-15 is not installed (scripts/install-deps.sh)" >&2; exit 70; }
	echo "citus.sh: building Citus from $(basename "$tarball") into $prefix" >&2
	src=$(mktemp -d /tmp/cdrflow-citus-src.XXXXXX)
	log=$src/build.log
	tar -xzf "$tarball" -C "$src" --strip-components=1
	# PostgreSQL 15.19+ declares have_createdb_privilege() itself; Citus 13.2.2's
	# compatibility header defines a static one for every PostgreSQL before 16
	if grep -q 'have_createdb_privilege' "$(pg_config --includedir-server)/commands/dbcommands.h"; then
		sed -i 's/^have_createdb_privilege(void)$/#define have_createdb_privilege citus_have_createdb_privilege\nhave_createdb_privilege(void)/' \
			"$src/src/include/pg_version_compat.h"
	fi
	if ! (cd "$src" && ./configure --without-libcurl && make -j"$(nproc)" with_llvm=no) >"$log" 2>&1; then
		tail -n 30 "$log" >&2
		rm -rf "$src"
		exit 70
	fi
	rm -rf "$prefix"
	mkdir -p "$prefix/usr/lib/postgresql" "$prefix/usr/share/postgresql"
	cp -a /usr/lib/postgresql/15 "$prefix/usr/lib/postgresql/"
	cp -a /usr/share/postgresql/15 "$prefix/usr/share/postgresql/"
	if ! (cd "$src" && make install with_llvm=no DESTDIR="$prefix") >>"$log" 2>&1; then
		tail -n 30 "$log" >&2
		rm -rf "$src"
		exit 70
	fi
	echo "$version" >"$prefix/pg-version"
	chmod -R a+rX "$prefix"
	rm -rf "$src"
}

if [ "$cmd" = build ]; then
	citus_bindir
	exit 0
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
# the coordinator's port is chosen once, when DIR is created
if [ -s "$dir/port" ]; then
	port=$(cat "$dir/port")
else
	port=${CDRFLOW_PGPORT:-54340}
	[ "$cmd" = start ] && echo "$port" >"$dir/port"
fi
if [ "$(id -u)" -eq 0 ]; then
	owner=postgres
	id "$owner" >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash "$owner"
	as_owner() { (cd / && runuser -u "$owner" -- "$@"); }
	chown "$owner" "$dir"
else
	owner=$(id -un)
	as_owner() { "$@"; }
fi
nodes="coordinator:$port worker1:$((port + 1)) worker2:$((port + 2))"

print_env() {
	echo "export PGHOST='$dir' PGPORT=$port PGUSER=$owner PGDATABASE=cdrflow"
}

psql_at() { # PORT SQL
	PGOPTIONS='-c client_min_messages=warning' as_owner "$bin/psql" -h "$dir" -p "$1" -d cdrflow -v ON_ERROR_STOP=1 -Atqc "$2"
}

case $cmd in
env) print_env ;;
start)
	bin=$(citus_bindir)
	for n in $nodes; do
		name=${n%%:*} p=${n#*:} data=$dir/$name
		if [ ! -s "$data/PG_VERSION" ]; then
			as_owner "$bin/initdb" -D "$data" -U "$owner" --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/$name-initdb.log" 2>&1 ||
				{ cat "$dir/$name-initdb.log" >&2; exit 69; }
			cat >>"$data/postgresql.conf" <<CONF
shared_preload_libraries = 'citus'
listen_addresses = ''
unix_socket_directories = '$dir'
port = $p
shared_buffers = 64MB
max_wal_size = 1GB
log_min_messages = warning
citus.shard_count = 8
CONF
		fi
		if ! as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
			as_owner "$bin/pg_ctl" -D "$data" -l "$dir/$name.log" -w -t 60 start >/dev/null ||
				{ tail -n 20 "$dir/$name.log" >&2; exit 69; }
		fi
		if ! as_owner "$bin/psql" -h "$dir" -p "$p" -d postgres -Atc "select 1 from pg_database where datname='cdrflow'" | grep -q 1; then
			as_owner "$bin/createdb" -h "$dir" -p "$p" cdrflow
		fi
		psql_at "$p" "CREATE EXTENSION IF NOT EXISTS citus" >/dev/null
	done
	# the coordinator knows itself and its workers by their socket directory
	if [ "$(psql_at "$port" "SELECT count(*) FROM pg_dist_node")" = 0 ]; then
		psql_at "$port" "SELECT citus_set_coordinator_host('$dir', $port)" >/dev/null
		psql_at "$port" "SELECT citus_add_node('$dir', $((port + 1)))" >/dev/null
		psql_at "$port" "SELECT citus_add_node('$dir', $((port + 2)))" >/dev/null
	fi
	print_env
	;;
stop)
	bin=$sysbin
	[ -x "$prefix/usr/lib/postgresql/15/bin/pg_ctl" ] && bin=$prefix/usr/lib/postgresql/15/bin
	for n in $nodes; do
		data=$dir/${n%%:*}
		if [ -s "$data/PG_VERSION" ]; then
			as_owner "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
		fi
	done
	;;
*) usage ;;
esac
