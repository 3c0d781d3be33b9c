#!/usr/bin/env bash
# The worked example of docs/identity.md ("Worked example: from keys to a revoked binding"),
# exactly as written between its markers, against a real `agentclear serve` set up as `ops/run`
# sets it up (an operator token file in var/, the binary at build/release/agentclear) on a fresh
# database; only the port differs (8080 is replaced by a free one). Every answer is checked:
# the user and the binding are created, the signed GET is accepted and its replay refused, the
# signed POST is accepted, the binding reads back, the revocation is acknowledged and the next
# request answers binding_revoked. Needs the test database (AGENTCLEAR_TEST_DATABASE_URL; skipped
# without it unless AC_REQUIRE_DB=1), openssl, curl, sha256sum and psql.
set -euo pipefail
src=${AC_SOURCE_DIR:?}
bin=${AC_BINARY:?}
base_url=${AGENTCLEAR_TEST_DATABASE_URL:-}
if [ -z "$base_url" ]; then
  [ "${AC_REQUIRE_DB:-0}" = 1 ] && { echo "identity_example: no AGENTCLEAR_TEST_DATABASE_URL"; exit 1; }
  echo "identity_example: skipped (no AGENTCLEAR_TEST_DATABASE_URL)"
  exit 77
fi
for t in openssl curl sha256sum psql base64; do
  command -v "$t" >/dev/null || { echo "identity_example: $t is not installed"; exit 1; }
done

tmp=$(mktemp -d "${AC_TEST_TMP:-/tmp}/identity_example.XXXXXX")
server=""
cleanup() {
  local rc=$?
  [ -n "$server" ] && kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  if [ $rc -ne 0 ]; then
    echo "--- server log"; tail -c 4000 "$tmp/serve.log" 2>/dev/null || true
    echo "--- example output"; cat "$tmp/out.txt" 2>/dev/null || true
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT

# a fresh database on the test cluster
dbname=ac_e2e_identity_example
psql -q "$base_url" -c "drop database if exists $dbname" -c "create database $dbname" >/dev/null
db_url="${base_url%/*}/$dbname"

# the example, extracted from the document
awk '/<!-- identity-example:begin -->/ { on = 1; next } /<!-- identity-example:end -->/ { on = 0 }
     on && !/^```/' "$src/docs/identity.md" >"$tmp/example.sh"
[ -s "$tmp/example.sh" ] || { echo "identity_example: no example between the markers"; exit 1; }
grep -q 'API=http://127.0.0.1:8080' "$tmp/example.sh" || { echo "identity_example: API line changed"; exit 1; }

# the layout ops/run gives: var/operator-token, build/release/agentclear
run="$tmp/run"
mkdir -p "$run/var" "$run/build/release"
(umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$run/var/operator-token")
ln -s "$bin" "$run/build/release/agentclear"

for attempt in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 30000))
  (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && continue
  AGENTCLEAR_DATABASE_URL="$db_url" AGENTCLEAR_OPERATOR_TOKEN_FILE="$run/var/operator-token" \
    AGENTCLEAR_LISTEN="127.0.0.1:$port" "$bin" serve >"$tmp/serve.log" 2>&1 &
  server=$!
  for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break 2
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
  done
  kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  server=""
done
[ -n "$server" ] || { echo "identity_example: the server did not start"; exit 1; }

sed "s/127\.0\.0\.1:8080/127.0.0.1:$port/g" "$tmp/example.sh" >"$run/example.sh"
(cd "$run" && bash -e example.sh) >"$tmp/out.txt" 2>"$tmp/err.txt" || {
  echo "identity_example: the example failed"; cat "$tmp/err.txt"; exit 1; }

fails=0
expect() { # line-number description fixed-string...
  local n=$1 what=$2 line
  shift 2
  line=$(sed -n "${n}p" "$tmp/out.txt")
  for want in "$@"; do
    grep -qF -- "$want" <<<"$line" || { echo "FAIL: answer $n ($what): no '$want' in: $line"; fails=$((fails + 1)); }
  done
}
[ "$(wc -l <"$tmp/out.txt")" -eq 8 ] || { echo "FAIL: expected 8 answers, got $(wc -l <"$tmp/out.txt")"; fails=$((fails + 1)); }
rd='"runtime_digest":"sha-256=:CUCvhc04MJ8ydE5LTFGCCL+YOZSowhbyUcLf7uMPLLY=:"'
expect 1 "user created" '"id":"alice"' '"alg":"EdDSA"' '"status":"active"'
expect 2 "binding created" '"id":"alice-shopper-1"' '"status":"active"' "$rd" '"agent":"shopper-1"'
expect 3 "signed GET" '"principal":"agent"' '"binding_id":"alice-shopper-1"' '"user_id":"alice"' \
  '"agent_id":"shopper-1"' '"runtime_digest":"CUCvhc04MJ8ydE5LTFGCCL+YOZSowhbyUcLf7uMPLLY="'
expect 4 "replay" '"code":"sig_replayed"' '"status":401'
expect 5 "signed POST" '"principal":"agent"' '\"@authority\" \"@path\" \"@query\"' 'content-digest'
expect 6 "binding read" '"id":"alice-shopper-1"' '"status":"active"' "$rd"
expect 7 "revocation" '"status":"revoked"' '"revoked_at":' '"revocation":{'
expect 8 "after the revocation" '"code":"binding_revoked"' '"status":401'
grep -q "AddressSanitizer\|LeakSanitizer\|runtime error:" "$tmp/serve.log" &&
  { echo "FAIL: sanitizer report in the server log"; fails=$((fails + 1)); }
[ $fails -eq 0 ] || exit 1
echo "identity_example: the worked example of docs/identity.md runs as written; 8 answers checked"
