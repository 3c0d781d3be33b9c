# ops/lib/common.sh -- shared by ops/run, ops/test, ops/bench: install, build, PostgreSQL.
# Sourced, not executed. Every function is safe to call twice.

AC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
AC_PGBIN=${AC_PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
AC_APT_PACKAGES="build-essential cmake pkg-config clang libssl-dev libpq-dev libmicrohttpd-dev
  libjansson-dev libcbor-dev libcmocka-dev libsodium-dev postgresql postgresql-contrib curl"
# Tools that may already come from elsewhere than Debian (a machine's own Node.js): installed
# from Debian only when the command is missing. "command:package"
AC_APT_COMMANDS="node:nodejs npm:npm"

ac_log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }

# Install the Debian packages the build and tests need, only those missing. Never prompts.
ac_install_deps() {
  local missing=() p
  for p in $AC_APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  for p in $AC_APT_COMMANDS; do
    command -v "${p%%:*}" >/dev/null 2>&1 || missing+=("${p#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  ac_log "installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  AC_PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
}

# Configure and build into $1 (default build/) with build type $2 (default RelWithDebInfo).
ac_build() {
  local dir=${1:-$AC_ROOT/build} type=${2:-RelWithDebInfo} log
  cmake -S "$AC_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE="$type" ${AC_CMAKE_ARGS:-} >/dev/null || return 1
  log=$(mktemp)
  if ! cmake --build "$dir" -j "$(nproc)" >"$log" 2>&1; then
    grep -vE '^\[ *[0-9]+%\]' "$log" >&2
    rm -f "$log"
    ac_log "build failed ($type)"
    return 1
  fi
  rm -f "$log"
}

# Run a command as the PostgreSQL server's user: postgres when we are root (the server refuses
# to run as root), ourselves otherwise.
ac_as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

ac_free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 30000))
    (echo >/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo "$p"; return 0; }
  done
  return 1
}

# Initialise a cluster in $1/data unless there is one. Prints nothing.
ac_pg_init() {
  local dir=$1
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir" && chmod 700 "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    ac_as_pg "$AC_PGBIN/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-locale >/dev/null
  fi
}

# The server options every cluster of ours gets (before AC_PG_EXTRA_OPTS).
AC_PG_OPTS="-c listen_addresses=127.0.0.1 -c max_connections=200"

# Start (initialising if needed) a cluster in $1 on port $2, socket in $1. Prints nothing.
# AC_PG_EXTRA_OPTS: more server options ("-c name=value ..."), e.g. for a benchmark's diagnostics.
ac_pg_start() {
  local dir=$1 port=$2
  ac_pg_init "$dir"
  ac_as_pg "$AC_PGBIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
    -o "-p $port -k $dir $AC_PG_OPTS ${AC_PG_EXTRA_OPTS:-}" start >/dev/null
}

ac_pg_stop() {
  local dir=$1 mode=${2:-fast}
  [ -f "$dir/data/postmaster.pid" ] || return 0
  ac_as_pg "$AC_PGBIN/pg_ctl" -D "$dir/data" -m "$mode" -w stop >/dev/null 2>&1 || true
}
