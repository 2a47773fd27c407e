#!/usr/bin/env bash
# A throwaway PostgreSQL server for the storage test suite (and for trying multi-instance setups).
#
# Usage:
#   bash scripts/postgres-test-server.sh [start]   install if missing, initialise, start; print the URL
#   bash scripts/postgres-test-server.sh status    print the URL if the server is up, else exit 1
#   bash scripts/postgres-test-server.sh stop      stop the server (the data directory stays)
#   bash scripts/postgres-test-server.sh destroy   stop the server and delete its directory
#
# `start` prints exactly one line on stdout, `NEURON_TEST_POSTGRES_URL=postgres://…`, and writes
# the same line to "$PG_TEST_DIR/env"; everything else goes to stderr. So either of these works:
#   export "$(bash scripts/postgres-test-server.sh)"
#   bash scripts/postgres-test-server.sh >/dev/null && set -a && . /tmp/neuron-postgres-test/env && set +a
#
# Idempotent: a second `start` finds the running server and prints the same URL. Runs as root (CI:
# installs Debian's postgresql package when no server binaries exist, then runs the server as the
# `postgres` user through runuser) or as an ordinary user who already has the binaries installed.
# No systemd: the server is started with pg_ctl on a data directory of its own, separate from any
# cluster the Debian package may have created, and listens on 127.0.0.1 only.
#
# Settings (environment; outside the NEURON_ namespace on purpose: the Neuron reads every other
# NEURON_* variable as configuration and refuses the ones it does not know):
#   PG_TEST_DIR   directory of the throwaway cluster   (default /tmp/neuron-postgres-test)
#   PG_TEST_PORT  TCP port on 127.0.0.1                (default 54329, away from the usual 5432)
#
# The cluster trades durability for speed (fsync off): it is for tests only, never for data.
set -euo pipefail

PG_DIR="${PG_TEST_DIR:-/tmp/neuron-postgres-test}"
PG_PORT="${PG_TEST_PORT:-54329}"
DATA="$PG_DIR/data"
LOG="$PG_DIR/server.log"
ENV_FILE="$PG_DIR/env"
# The role and database the tests use. The password is only a test fixture on a loopback-only
# server; it exists so the suite exercises password authentication like a real deployment (and
# differs from every other part of the URL, so tests can check it never leaks into a message).
ROLE=neuron_test
PASSWORD=test-only-pw-5d1c
DATABASE=neuron_test
URL="postgres://$ROLE:$PASSWORD@127.0.0.1:$PG_PORT/$DATABASE"

say() { printf 'postgres-test-server: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# Runs a command as the server's owner: `postgres` when we are root, else ourselves.
as_owner() {
  if is_root; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

find_bindir() {
  local candidate
  if command -v pg_config >/dev/null 2>&1; then
    candidate="$(pg_config --bindir 2>/dev/null || true)"
    if [ -n "$candidate" ] && [ -x "$candidate/initdb" ]; then
      printf '%s\n' "$candidate"
      return 0
    fi
  fi
  # Debian keeps server binaries per major version; take the newest.
  candidate="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -n "$candidate" ] && [ -x "$candidate/initdb" ]; then
    printf '%s\n' "$candidate"
    return 0
  fi
  return 1
}

install_postgres() {
  is_root || die "PostgreSQL server binaries are not installed and we are not root; install the 'postgresql' package (Debian/Ubuntu) or run this script as root"
  command -v apt-get >/dev/null 2>&1 || die "PostgreSQL is not installed and apt-get is not available; install PostgreSQL and rerun"
  say "installing PostgreSQL from the distribution's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends postgresql >&2
}

server_running() {
  [ -f "$DATA/PG_VERSION" ] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

# A query as the superuser over the server's own socket directory (trust authentication).
psql_super() {
  as_owner "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" -U postgres -d "${2:-postgres}" -tA -c "$1"
}

init_cluster() {
  say "initialising a cluster in $DATA"
  mkdir -p "$PG_DIR"
  if is_root; then
    chown postgres:postgres "$PG_DIR"
  fi
  chmod 0700 "$PG_DIR"
  # Local socket connections trust (only the owner can reach the socket in a 0700 directory);
  # TCP needs a password, as a real deployment would.
  as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
  as_owner tee -a "$DATA/postgresql.conf" >/dev/null <<EOF

# --- neuron test server (scripts/postgres-test-server.sh) ---
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
# The suites open several pools at once (separate "instances"); the default 100 is tight.
max_connections = 300
# Throwaway data: skip the disk flushes that make real commits durable, for speed.
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
}

start_server() {
  say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
  as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >&2 \
    || { tail -n 30 "$LOG" >&2 || true; die "the server did not start; see $LOG (is port $PG_PORT taken? set PG_TEST_PORT)"; }
}

ensure_role_and_database() {
  if [ "$(psql_super "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != "1" ]; then
    # CREATEDB so a suite may also make databases of its own; not a superuser, like production.
    psql_super "CREATE ROLE $ROLE LOGIN CREATEDB"
  fi
  # Set every time, so a cluster made by an older version of this script gets today's password.
  psql_super "ALTER ROLE $ROLE PASSWORD '$PASSWORD'"
  if [ "$(psql_super "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" != "1" ]; then
    psql_super "CREATE DATABASE $DATABASE OWNER $ROLE"
  fi
}

announce() {
  printf 'NEURON_TEST_POSTGRES_URL=%s\n' "$URL" >"$ENV_FILE"
  say "ready: $URL"
  printf 'NEURON_TEST_POSTGRES_URL=%s\n' "$URL"
}

# runuser keeps the working directory, which the postgres user may not be allowed to enter.
if is_root; then cd /; fi

command="${1:-start}"
case "$command" in
  start)
    if ! BIN="$(find_bindir)"; then
      install_postgres
      BIN="$(find_bindir)" || die "PostgreSQL was installed but its server binaries were not found under /usr/lib/postgresql"
    fi
    if is_root && ! id postgres >/dev/null 2>&1; then
      die "the 'postgres' user does not exist; reinstall the postgresql package"
    fi
    say "using $("$BIN/postgres" --version)"
    if [ ! -f "$DATA/PG_VERSION" ]; then
      [ -d "$DATA" ] && [ -n "$(ls -A "$DATA" 2>/dev/null)" ] && die "$DATA exists but is not a PostgreSQL cluster; remove it or set PG_TEST_DIR"
      init_cluster
    elif [ "$(cat "$DATA/PG_VERSION")" != "$("$BIN/postgres" --version | awk '{ print $3 }' | cut -d. -f1)" ]; then
      die "$DATA was made by PostgreSQL $(cat "$DATA/PG_VERSION"); run '$0 destroy' first"
    fi
    if ! server_running; then start_server; else say "already running"; fi
    ensure_role_and_database
    announce
    ;;
  status)
    BIN="$(find_bindir)" || die "PostgreSQL is not installed"
    if server_running; then
      printf 'NEURON_TEST_POSTGRES_URL=%s\n' "$URL"
    else
      say "not running"
      exit 1
    fi
    ;;
  stop)
    BIN="$(find_bindir)" || die "PostgreSQL is not installed"
    if server_running; then as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >&2; else say "not running"; fi
    ;;
  destroy)
    if BIN="$(find_bindir)" && server_running; then
      as_owner "$BIN/pg_ctl" -D "$DATA" -m immediate -w stop >&2
    fi
    rm -rf "$PG_DIR"
    say "removed $PG_DIR"
    ;;
  *)
    die "unknown command '$command' (start, status, stop, destroy)"
    ;;
esac
