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
name=merchant_example
source "$src/tests/support/e2e.sh"
ac_e2e_need_db
if [ -z "${AC_NPM_DIR:-}" ]; then
  [ "${AC_REQUIRE_NPM:-0}" = 1 ] && { echo "merchant_example: no AC_NPM_DIR"; exit 1; }
  echo "merchant_example: skipped (no AC_NPM_DIR)"; exit 77
fi
ac_e2e_need_tools node curl psql
ac_e2e_tmpdir out.txt err.txt

ac_e2e_fresh_db ac_e2e_merchant_example

mkdir -m 700 "$tmp/keys"
"$bin" keygen --out="$tmp/keys/server.jwk" --valid-days=30 >/dev/null
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')

ac_e2e_serve AGENTCLEAR_DATABASE_URL="$db_url" AGENTCLEAR_OPERATOR_TOKEN="$token" \
  AGENTCLEAR_KEYS_DIR="$tmp/keys" AGENTCLEAR_CHECKPOINT_MS=200

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
ac_e2e_stop_cleanly || exit 1
echo "merchant_example: docs/examples/merchant-flow.mjs ran twice to its end; audit replay --db passed"
cat "$tmp/replay.txt"
cat "$tmp/out.txt"
