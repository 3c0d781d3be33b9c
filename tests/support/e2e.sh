# tests/support/e2e.sh -- sourced (bash) by the tests/e2e/*.sh scripts: what they share. Set
# `name` (the test's name, for messages and file names) before sourcing; with `set -euo pipefail`.
#   ac_e2e_need_db            base_url from AGENTCLEAR_TEST_DATABASE_URL, or exit 77 (skipped;
#                             1 when AC_REQUIRE_DB=1)
#   ac_e2e_need_tools T...    exit 1 unless every command T is installed
#   ac_e2e_tmpdir F...        tmp: a fresh directory, removed at exit when the script succeeded;
#                             on failure the server is stopped and the tail of $tmp/serve.log
#                             and the files F are printed instead
#   ac_e2e_fresh_db DBNAME    db_url: a fresh database DBNAME on the test cluster
#   ac_e2e_serve VAR=VALUE... `agentclear serve` with those variables, listening on a free port
#                             of 127.0.0.1 (port), ready (GET /readyz); its pid in server, its
#                             output in $tmp/serve.log. Exit 1 when it does not start.
#   ac_e2e_stop_cleanly       SIGTERM, then fail (status 1, message) unless the server exited
#                             by itself within 20 s with 0 and its log has no sanitizer report

server=""
tmp=""
ac_e2e_show=()

ac_e2e_need_db() {
  base_url=${AGENTCLEAR_TEST_DATABASE_URL:-}
  if [ -z "$base_url" ]; then
    [ "${AC_REQUIRE_DB:-0}" = 1 ] && { echo "$name: no AGENTCLEAR_TEST_DATABASE_URL"; exit 1; }
    echo "$name: skipped (no AGENTCLEAR_TEST_DATABASE_URL)"
    exit 77
  fi
}

ac_e2e_need_tools() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null || { echo "$name: $t is not installed"; exit 1; }
  done
}

ac_e2e_cleanup() {
  local rc=$?
  [ -n "$server" ] && kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  if [ $rc -ne 0 ]; then
    echo "--- server log"; tail -c 4000 "$tmp/serve.log" 2>/dev/null || true
    if [ ${#ac_e2e_show[@]} -gt 0 ]; then
      echo "--- example output"; cat "${ac_e2e_show[@]}" 2>/dev/null || true
    fi
  else
    rm -rf "$tmp"
  fi
}

ac_e2e_tmpdir() {
  tmp=$(mktemp -d "${AC_TEST_TMP:-/tmp}/$name.XXXXXX")
  ac_e2e_show=()
  local f
  for f in "$@"; do ac_e2e_show+=("$tmp/$f"); done
  trap ac_e2e_cleanup EXIT
}

ac_e2e_fresh_db() {
  psql -q "$base_url" -c "drop database if exists $1" -c "create database $1" >/dev/null
  db_url="${base_url%/*}/$1"
}

ac_e2e_serve() {
  local attempt
  for attempt in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 30000))
    (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && continue
    env "$@" AGENTCLEAR_LISTEN="127.0.0.1:$port" "$bin" serve >"$tmp/serve.log" 2>&1 &
    server=$!
    for _ in $(seq 1 300); do
      curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
      kill -0 "$server" 2>/dev/null || break
      sleep 0.1
    done
    kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
    server=""
  done
  echo "$name: the server did not start"
  exit 1
}

ac_e2e_stop_cleanly() {
  local pid=$server status=0
  server=""
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    echo "FAIL: the server did not stop within 20 s of SIGTERM"
    return 1
  fi
  wait "$pid" 2>/dev/null || status=$?
  if [ $status -ne 0 ]; then
    echo "FAIL: the server exited with status $status after SIGTERM"
    return 1
  fi
  if grep -q "AddressSanitizer\|LeakSanitizer\|runtime error:" "$tmp/serve.log"; then
    echo "FAIL: sanitizer report in the server log"
    return 1
  fi
  return 0
}
