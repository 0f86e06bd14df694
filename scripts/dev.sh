#!/usr/bin/env bash
# One entry point for set-up, the local servers, running and testing AUMAn.
# The Makefile calls it; every step is idempotent, so running it again is quick.
#
#   scripts/dev.sh bootstrap   system packages, virtualenv, local PostgreSQL/Redis, migrations
#   scripts/dev.sh run         bootstrap, demo data, then web + Celery worker + beat (Ctrl-C stops all)
#   scripts/dev.sh test        bootstrap, then the whole test suite
#   scripts/dev.sh stop        stop the project-local PostgreSQL and Redis
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VAR="$ROOT/var"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

# Project-local servers listen on loopback on ports unlikely to clash with a system install.
LOCAL_PG_PORT="${AUMAN_LOCAL_PG_PORT:-54329}"
LOCAL_REDIS_PORT="${AUMAN_LOCAL_REDIS_PORT:-63799}"
PG_BIN="/usr/lib/postgresql/15/bin"

APT_PACKAGES=(postgresql-15 postgresql-15-postgis-3 libgdal32 libgeos-c1v5 libproj25 gdal-bin redis-server chromium gettext fonts-dejavu-core)

STARTED_PG="" STARTED_REDIS=""

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf '\033[31mERROR: %s\033[0m\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@";
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@";
  else return 1; fi
}

install_system_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # When both servers are given from outside, their packages are not needed here.
  if [ -n "${DATABASE_URL:-}" ]; then missing=("${missing[@]/postgresql-15-postgis-3}"); missing=("${missing[@]/postgresql-15}"); fi
  if [ -n "${REDIS_URL:-}" ]; then missing=("${missing[@]/redis-server}"); fi
  local wanted=(); for p in "${missing[@]}"; do [ -n "$p" ] && wanted+=("$p"); done
  [ ${#wanted[@]} -eq 0 ] && return 0
  say "Installing Debian packages: ${wanted[*]}"
  command -v apt-get >/dev/null || die "apt-get not found. Install these packages by hand: ${wanted[*]} (or set DATABASE_URL and REDIS_URL to existing servers)."
  as_root true || die "Installing ${wanted[*]} needs root or password-less sudo. Run 'sudo apt-get install ${wanted[*]}' once, or set DATABASE_URL / REDIS_URL to existing servers."
  export DEBIAN_FRONTEND=noninteractive
  # Debian's postgresql package would start its own cluster on 5432; we run our own under ./var.
  as_root apt-get update -qq || die "apt-get update failed: check the package mirror in /etc/apt/sources.list."
  as_root apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null || die "apt-get install ${wanted[*]} failed."
}

install_python() {
  command -v python3.11 >/dev/null || command -v python3 >/dev/null || die "Python 3.11 is missing: apt-get install python3 python3-venv"
  if [ ! -x "$PY" ]; then
    say "Creating the virtual environment in .venv"
    python3 -m venv "$VENV" || die "python3 -m venv failed: apt-get install python3-venv"
  fi
  # Reinstall only when requirements.txt changed since the last install.
  local stamp="$VENV/.requirements.sha"
  local want; want="$(sha256sum requirements.txt | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "Installing Python packages from requirements.txt"
    "$PY" -m pip install -q --disable-pip-version-check -r requirements.txt || die "pip install failed"
    echo "$want" > "$stamp"
  fi
}

# PostgreSQL refuses to run as root: as root the cluster belongs to the 'postgres' system user.
pg_run() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then say "Using DATABASE_URL from the environment"; return 0; fi
  local data="$VAR/pg/data" sock="$VAR/pg/run"
  [ -x "$PG_BIN/initdb" ] || die "PostgreSQL 15 binaries not found in $PG_BIN: apt-get install postgresql-15 postgresql-15-postgis-3, or set DATABASE_URL."
  mkdir -p "$VAR/pg" "$sock"
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "the 'postgres' system user is missing: reinstall postgresql-15, or set DATABASE_URL."
    chown -R postgres: "$VAR/pg"
    # The postgres user must be able to reach ./var/pg through every parent directory.
    chmod o+x "$ROOT" "$VAR" 2>/dev/null || true
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    say "Initialising a PostgreSQL cluster in var/pg"
    pg_run "$PG_BIN/initdb" -D "$data" -U auman --auth=trust -E UTF8 --locale=C.UTF-8 >"$VAR/pg/initdb.log" 2>&1 \
      || die "initdb failed, see var/pg/initdb.log"
  fi
  if ! pg_run "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    say "Starting PostgreSQL on 127.0.0.1:$LOCAL_PG_PORT"
    STARTED_PG=1
    pg_run "$PG_BIN/pg_ctl" -D "$data" -l "$VAR/pg/server.log" -w -t 60 \
      -o "-p $LOCAL_PG_PORT -k $sock -c listen_addresses=127.0.0.1 -c fsync=${AUMAN_LOCAL_PG_FSYNC:-on}" start >/dev/null \
      || die "PostgreSQL did not start, see var/pg/server.log"
  fi
  pg_run "$PG_BIN/psql" -h 127.0.0.1 -p "$LOCAL_PG_PORT" -U auman -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='auman'" | grep -q 1 \
    || pg_run "$PG_BIN/createdb" -h 127.0.0.1 -p "$LOCAL_PG_PORT" -U auman auman
  export DATABASE_URL="postgis://auman@127.0.0.1:$LOCAL_PG_PORT/auman"
}

start_redis() {
  if [ -n "${REDIS_URL:-}" ]; then say "Using REDIS_URL from the environment"; return 0; fi
  command -v redis-server >/dev/null || die "redis-server not found: apt-get install redis-server, or set REDIS_URL."
  mkdir -p "$VAR/redis"
  if ! redis-cli -p "$LOCAL_REDIS_PORT" ping >/dev/null 2>&1; then
    say "Starting Redis on 127.0.0.1:$LOCAL_REDIS_PORT"
    STARTED_REDIS=1
    redis-server --bind 127.0.0.1 --port "$LOCAL_REDIS_PORT" --dir "$VAR/redis" --daemonize yes \
      --pidfile "$VAR/redis/redis.pid" --logfile "$VAR/redis/redis.log" --appendonly yes --save "" \
      || die "Redis did not start, see var/redis/redis.log"
    for _ in $(seq 50); do redis-cli -p "$LOCAL_REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  export REDIS_URL="redis://127.0.0.1:$LOCAL_REDIS_PORT/0"
}

stop_local_servers() {
  if [ -f "$VAR/pg/data/PG_VERSION" ]; then
    pg_run "$PG_BIN/pg_ctl" -D "$VAR/pg/data" -m fast stop >/dev/null 2>&1 || true
  fi
  redis-cli -p "$LOCAL_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
}

# Stop only the servers this invocation started: a `make test` beside a running `make run` leaves it alone,
# and CI keeps nothing running afterwards. AUMAN_KEEP_SERVERS=1 keeps them for quicker re-runs.
stop_if_ours() {
  [ -z "${AUMAN_KEEP_SERVERS:-}" ] || return 0
  if [ -n "$STARTED_PG" ]; then pg_run "$PG_BIN/pg_ctl" -D "$VAR/pg/data" -m fast stop >/dev/null 2>&1 || true; fi
  if [ -n "$STARTED_REDIS" ]; then redis-cli -p "$LOCAL_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true; fi
}

bootstrap() {
  install_system_packages
  install_python
  start_postgres
  start_redis
  say "Applying migrations"
  "$PY" manage.py migrate --noinput -v 0
  if compgen -G "locale/*/LC_MESSAGES/*.po" >/dev/null; then
    command -v msgfmt >/dev/null || die "msgfmt not found: apt-get install gettext"
    "$PY" manage.py compilemessages -v 0 --ignore '.venv' || die "compilemessages failed"
  fi
}

cmd="${1:-}"
case "$cmd" in
  bootstrap) bootstrap ;;
  run)
    trap 'stop_if_ours; say "Stopped."' EXIT
    bootstrap
    say "Loading demo data"
    # load_demo refuses a register with real roadworks or an https SITE_URL (demo logins have known passwords):
    # the service still starts, without demo data.
    "$PY" manage.py load_demo || say "Demo data not loaded (see above); the service starts without it."
    "$PY" manage.py load_demo_streets
    "$PY" manage.py load_districts
    "$PY" manage.py collectstatic --noinput -v 0
    host="${AUMAN_HOST:-127.0.0.1}" port="${PORT:-8000}"
    say "AUMAn runs at http://$host:$port/  (API: /api/v1/, docs: /api/docs/, admin: /admin/)"
    "$PY" manage.py demo_logins
    say "Ctrl-C stops web, worker, beat and the local servers."
    export AUMAN_HOST="$host" PORT="$port"
    # Ctrl-C ends honcho with 130: that is the normal way to stop, not an error.
    "$VENV/bin/honcho" -f Procfile start -p "$port" || [ $? -eq 130 ]
    ;;
  test)
    trap stop_if_ours EXIT
    bootstrap
    "$PY" manage.py collectstatic --noinput -v 0
    shift
    say "ruff"
    "$VENV/bin/ruff" check --quiet .
    "$PY" -m pytest "$@"
    ;;
  bench)
    trap stop_if_ours EXIT
    bootstrap
    for script in bench/[a-z]*.py; do
      say "Benchmark $script"
      "$PY" "$script"
    done
    ;;
  stop) stop_local_servers ;;
  *) echo "usage: $0 {bootstrap|run|test|bench|stop}" >&2; exit 2 ;;
esac
