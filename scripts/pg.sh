#!/usr/bin/env bash
# A private PostgreSQL 15 cluster for the demo and the tests: initdb in a
# local directory, listening only on a unix socket in that directory, run by
# a non-root OS user (initdb refuses root).  Nothing else on the machine is
# touched; stop it with "scripts/pg.sh stop DIR".
#
#   scripts/pg.sh start DIR   create (first time) and start; prints the PG* exports
#   scripts/pg.sh stop DIR    stop it (fast shutdown)
#   scripts/pg.sh env DIR     print the PG* exports (eval "$(scripts/pg.sh env DIR)")
#   scripts/pg.sh restart DIR
#
# DIR must be reachable by the cluster's OS user: when run as root the user is
# "postgres" and DIR's parents must be traversable (/tmp works; so does any
# path under a 755 tree).  The database is "cdrflow", owned by that user.
set -euo pipefail
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop|restart|env DIR" >&2; exit 64; }
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bindir/initdb" ] || { echo "pg.sh: PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 69; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
port=${CDRFLOW_PGPORT:-54329}
if [ "$(id -u)" -eq 0 ]; then
	owner=postgres
	id "$owner" >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash "$owner"
	as_owner() { (cd / && runuser -u "$owner" -- "$@"); }
	chown "$owner" "$dir"
else
	owner=$(id -un)
	as_owner() { "$@"; }
fi
data=$dir/data
sock=$dir

print_env() {
	echo "export PGHOST='$sock' PGPORT=$port PGUSER=$owner PGDATABASE=cdrflow"
}

case $cmd in
env) print_env ;;
start)
	if [ ! -s "$data/PG_VERSION" ]; then
		as_owner "$bindir/initdb" -D "$data" -U "$owner" --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
			{ cat "$dir/initdb.log" >&2; exit 70; }
		cat >>"$data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$sock'
port = $port
shared_buffers = 128MB
max_wal_size = 2GB
fsync = on
synchronous_commit = on
log_min_messages = warning
CONF
	fi
	if ! as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
		as_owner "$bindir/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
			{ tail -n 20 "$dir/server.log" >&2; exit 69; }
	fi
	if ! as_owner "$bindir/psql" -h "$sock" -p "$port" -d postgres -Atc "select 1 from pg_database where datname='cdrflow'" | grep -q 1; then
		as_owner "$bindir/createdb" -h "$sock" -p "$port" cdrflow
	fi
	print_env
	;;
stop)
	if [ -s "$data/PG_VERSION" ]; then
		as_owner "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
	fi
	;;
restart)
	as_owner "$bindir/pg_ctl" -D "$data" -m fast -w -l "$dir/server.log" restart >/dev/null
	print_env
	;;
*) echo "usage: $0 start|stop|restart|env DIR" >&2; exit 64 ;;
esac
