#!/usr/bin/env bash
# Installs (from Debian's packages, when missing), initialises and runs a private PostgreSQL
# cluster on localhost for the tests and for running the system on PostgreSQL.
# Usage: deploy/postgres/postgres.sh up|stop|status|restart
# Settings: PG_PORT (5433), PG_DATA_DIR (/tmp/ironarmy-postgres-$PG_PORT), PG_USER (ironarmy),
# PG_DB (ironarmy).
set -euo pipefail

port="${PG_PORT:-5433}"
data_dir="${PG_DATA_DIR:-/tmp/ironarmy-postgres-$port}"
user="${PG_USER:-ironarmy}"
db="${PG_DB:-ironarmy}"

bindir() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

install() {
  if bindir >/dev/null; then return; fi
  echo "postgres.sh: installing PostgreSQL from Debian's packages..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
  bindir >/dev/null || { echo "postgres.sh: PostgreSQL install failed" >&2; exit 1; }
}

as_pg() {
  # The server refuses to run as root: it runs as the packages' `postgres` user.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

running() {
  as_pg "$(bindir)/pg_ctl" -D "$data_dir" status >/dev/null 2>&1
}

up() {
  install
  local bin; bin="$(bindir)"
  if [ ! -f "$data_dir/PG_VERSION" ]; then
    mkdir -p "$data_dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$data_dir"
    as_pg "$bin/initdb" -D "$data_dir" -U "$user" -A trust -E UTF8 --no-locale >/dev/null
    cat >> "$data_dir/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$data_dir'
max_connections = 200
fsync = on
shared_buffers = 256MB
CONF
  fi
  if ! running; then
    as_pg "$bin/pg_ctl" -D "$data_dir" -l "$data_dir/server.log" -w -t 60 start >/dev/null
  fi
  if ! as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U "$user" -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1; then
    as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U "$user" "$db"
  fi
  echo "postgres.sh: PostgreSQL ready on 127.0.0.1:$port (user $user, database $db)"
}

stop() {
  if running; then as_pg "$(bindir)/pg_ctl" -D "$data_dir" -m fast -w stop >/dev/null; fi
  echo "postgres.sh: stopped"
}

case "${1:-}" in
  up) up ;;
  stop) stop ;;
  restart) stop; up ;;
  status) if bindir >/dev/null && running; then echo running; else echo stopped; exit 1; fi ;;
  *) echo "usage: $0 up|stop|restart|status" >&2; exit 2 ;;
esac
