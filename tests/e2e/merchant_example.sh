#!/usr/bin/env bash
# docs/examples/merchant-flow.mjs, the example merchant integration of docs/merchant-example.md,
# run as written against a real `agentclear serve` (fresh database, a server signing key so that
# checkpoints are signed, an operator token) with the npm packages ops/npm-clients.sh installed
# (AC_NPM_DIR). The script checks every answer itself (statuses, settled, the receipt's inclusion
# proof against a checkpoint verified with the JWKS key, the balances) and exits non-zero on the
# first surprise; this test checks that it ran to its end and that the server log is clean.
# Skipped without the test database or AC_NPM_DIR, unless AC_REQUIRE_DB=1 / AC_REQUIRE_NPM=1.
set -euo pipefail
src=${AC_SOURCE_DIR:?}
bin=${AC_BINARY:?}
base_url=${AGENTCLEAR_TEST_DATABASE_URL:-}
if [ -z "$base_url" ]; then
  [ "${AC_REQUIRE_DB:-0}" = 1 ] && { echo "merchant_example: no AGENTCLEAR_TEST_DATABASE_URL"; exit 1; }
  echo "merchant_example: skipped (no AGENTCLEAR_TEST_DATABASE_URL)"; exit 77
fi
if [ -z "${AC_NPM_DIR:-}" ]; then
  [ "${AC_REQUIRE_NPM:-0}" = 1 ] && { echo "merchant_example: no AC_NPM_DIR"; exit 1; }
  echo "merchant_example: skipped (no AC_NPM_DIR)"; exit 77
fi
for t in node curl psql; do
  command -v "$t" >/dev/null || { echo "merchant_example: $t is not installed"; exit 1; }
done

tmp=$(mktemp -d "${AC_TEST_TMP:-/tmp}/merchant_example.XXXXXX")
server=""
cleanup() {
  local rc=$?
  [ -n "$server" ] && kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  if [ $rc -ne 0 ]; then
    echo "--- server log"; tail -c 4000 "$tmp/serve.log" 2>/dev/null || true
    echo "--- example output"; cat "$tmp/out.txt" "$tmp/err.txt" 2>/dev/null || true
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT

dbname=ac_e2e_merchant_example
psql -q "$base_url" -c "drop database if exists $dbname" -c "create database $dbname" >/dev/null
db_url="${base_url%/*}/$dbname"

mkdir -m 700 "$tmp/keys"
"$bin" keygen --out="$tmp/keys/server.jwk" --valid-days=30 >/dev/null
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')

for attempt in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 30000))
  (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && continue
  AGENTCLEAR_DATABASE_URL="$db_url" AGENTCLEAR_OPERATOR_TOKEN="$token" AGENTCLEAR_KEYS_DIR="$tmp/keys" \
    AGENTCLEAR_CHECKPOINT_MS=200 AGENTCLEAR_LISTEN="127.0.0.1:$port" "$bin" serve >"$tmp/serve.log" 2>&1 &
  server=$!
  for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break 2
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
  done
  kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  server=""
done
[ -n "$server" ] || { echo "merchant_example: the server did not start"; exit 1; }

# twice: the script makes its ids unique, so it must also run against a server it has used
for round in 1 2; do
  AC_URL="http://127.0.0.1:$port" AC_OPERATOR_TOKEN="$token" \
    node "$src/docs/examples/merchant-flow.mjs" >"$tmp/out.txt" 2>"$tmp/err.txt" ||
    { echo "merchant_example: round $round failed"; exit 1; }
  grep -q '^merchant-flow: every step answered as expected$' "$tmp/out.txt" ||
    { echo "merchant_example: round $round did not reach its end"; exit 1; }
done
# the auditor's side: everything the two rounds did is in the evidence log, and the offline
# replay of its export verifies and recomputes it, balances compared with the live ledger
export AGENTCLEAR_DATABASE_URL="$db_url" AGENTCLEAR_KEYS_DIR="$tmp/keys"
sleep 0.5 # the last records' checkpoint (checkpoint-ms 200)
"$bin" evidence export --out="$tmp/evidence.cbor" >"$tmp/export.txt" 2>&1 ||
  { echo "merchant_example: export failed"; cat "$tmp/export.txt"; exit 1; }
"$bin" audit replay "$tmp/evidence.cbor" --log-key="$("$bin" evidence log-key)" --db="$db_url" \
  >"$tmp/replay.txt" 2>&1 || { echo "merchant_example: audit replay failed"; cat "$tmp/replay.txt"; exit 1; }
# per round: the operator's accounts and funding (ledger.account, ledger.transfer), binding,
# mandate, payment, refund, two price versions, top-up, tab open, settle,
# close (the stale top-up writes nothing): 12 records
want_lines=("VERIFIED 24 records" "6 signatures verified with the binding's agent key"
  "4 tab vouchers verified" "6 recomputed with the risk engine and equal" "0 not recomputable"
  "2 token amounts recomputed" "every recorded transfer present and equal")
for want in "${want_lines[@]}"; do
  grep -qF -- "$want" "$tmp/replay.txt" ||
    { echo "merchant_example: the replay does not say '$want'"; cat "$tmp/replay.txt"; exit 1; }
done
if grep -q "AddressSanitizer\|LeakSanitizer\|runtime error:" "$tmp/serve.log"; then
  echo "FAIL: sanitizer report in the server log"; exit 1
fi
echo "merchant_example: docs/examples/merchant-flow.mjs ran twice to its end; audit replay --db passed"
cat "$tmp/replay.txt"
cat "$tmp/out.txt"
