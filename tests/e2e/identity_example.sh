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
name=identity_example
source "$src/tests/support/e2e.sh"
ac_e2e_need_db
ac_e2e_need_tools openssl curl sha256sum psql base64
ac_e2e_tmpdir out.txt

# a fresh database on the test cluster
ac_e2e_fresh_db ac_e2e_identity_example

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

ac_e2e_serve AGENTCLEAR_DATABASE_URL="$db_url" AGENTCLEAR_OPERATOR_TOKEN_FILE="$run/var/operator-token"

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
ac_e2e_stop_cleanly || fails=$((fails + 1))
[ $fails -eq 0 ] || exit 1
echo "identity_example: the worked example of docs/identity.md runs as written; 8 answers checked"
