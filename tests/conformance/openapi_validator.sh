#!/usr/bin/env bash
# The response validator (tests/conformance/npm/validate-responses.mjs) passes correct responses
# (including the router's own answers) and fails each kind of drift: an undocumented member,
# status, content type or path, a missing required header, a wrong problem status, a money amount
# as a JSON number, an unknown error code, a 405 without Allow, a 401 without (or with the wrong) WWW-Authenticate, a route not in the route table, and an empty log. Needs the npm clients (AC_NPM_DIR, ops/npm-clients.sh); skipped without them.
set -euo pipefail
src=${AC_SOURCE_DIR:?}
npm=${AC_NPM_DIR:-}
if [ -z "$npm" ] || [ ! -d "$npm/node_modules/ajv" ] || [ ! -d "$npm/node_modules/yaml" ]; then
  echo "openapi_validator: skipped (AC_NPM_DIR without ajv and yaml)"
  exit 77
fi
v="$src/tests/conformance/npm/validate-responses.mjs"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

J='"content_type":"application/json","headers":{"cache-control":"no-store"}'
P='"content_type":"application/problem+json","headers":{"cache-control":"no-store"}'
P503='"content_type":"application/problem+json","headers":{"cache-control":"no-store","retry-after":"1"}'
P405='"content_type":"application/problem+json","headers":{"cache-control":"no-store","allow":"POST"}'
P401='"content_type":"application/problem+json","headers":{"cache-control":"no-store","www-authenticate":"Bearer realm=\"agentclear\""}'
P401S='"content_type":"application/problem+json","headers":{"cache-control":"no-store","www-authenticate":"Signature realm=\"agentclear\"","accept-signature":"sig1=(\"@method\" \"@target-uri\");created;expires;tag=\"agentclear\""}'
prob() { # code status instance
  printf '{\\"type\\":\\"urn:agentclear:error:%s\\",\\"title\\":\\"t\\",\\"status\\":%s,\\"code\\":\\"%s\\",\\"instance\\":\\"%s\\"}' "$1" "$2" "$1" "$3"
}
line() { # method path status headers-and-type body
  printf '{"method":"%s","path":"%s","query":null,"status":%s,%s,"body":"%s"}\n' "$1" "$2" "$3" "$4" "$5"
}
acct='{\"id\":\"a\",\"asset\":\"CNY\",\"owner\":\"\",\"flags\":[],\"debits_pending\":\"0.00\",\"debits_posted\":\"1.00\",\"credits_pending\":\"0.00\",\"credits_posted\":\"2.50\"}'

{
  line GET /healthz 200 "$J" '{\"status\":\"ok\"}'
  line GET /readyz 503 "$P503" "$(prob not_leader 503 /readyz)"
  line GET /v1/ledger/accounts/a 200 "$J" "$acct"
  line POST /v1/ledger/transfers 200 "$J" '{\"results\":[{\"id\":\"t1\",\"status\":\"ok\",\"amount\":\"1.00\",\"created_at\":\"2026-01-31T12:00:00.000000Z\",\"replayed\":true}]}'
  line POST /v1/ledger/transfers 422 "$P" '{\"type\":\"urn:agentclear:error:exceeds_credits\",\"title\":\"t\",\"status\":422,\"code\":\"exceeds_credits\",\"instance\":\"/v1/ledger/transfers\",\"detail\":\"1 of 1 transfers failed\",\"results\":[{\"id\":\"t2\",\"status\":\"failed\",\"code\":\"exceeds_credits\"}]}'
  line POST /v1/ledger/transfer 404 "$P" "$(prob not_found 404 /v1/ledger/transfer)"
  line PUT /v1/ledger/transfers 405 "$P405" "$(prob method_not_allowed 405 /v1/ledger/transfers)"
  line GET "/v1/ledger/transfers/$(printf 'x%.0s' {1..600})" 414 "$P" "$(prob uri_too_long 414 /v1/ledger/transfers/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx)"
  line GET /v1/ledger/accounts/a 401 "$P401" "$(prob unauthorized 401 /v1/ledger/accounts/a)"
  line GET /v1/whoami 401 "$P401S" "$(prob sig_missing 401 /v1/whoami)"
} >"$tmp/good.jsonl"

out=$(node "$v" "$tmp/good.jsonl") || { echo "FAIL: correct responses were refused:"; echo "$out"; exit 1; }
echo "$out" | grep -q "10 responses checked" || { echo "FAIL: expected 10 responses checked:"; echo "$out"; exit 1; }

fails=0
expect_fail() { # name expected-text line
  local name=$1 want=$2
  printf '%s\n' "$3" >"$tmp/bad.jsonl"
  local rc=0 got
  got=$(node "$v" "$tmp/bad.jsonl" 2>&1) || rc=$?
  if [ $rc -ne 1 ] || ! grep -qF -- "$want" <<<"$got"; then
    echo "FAIL: $name: expected exit 1 and '$want', got exit $rc:"; echo "$got"; fails=$((fails + 1))
  fi
}
expect_fail "extra member" "must NOT have additional properties" \
  "$(line GET /healthz 200 "$J" '{\"status\":\"ok\",\"uptime\":1}')"
expect_fail "undocumented status" "status 418 is not documented" \
  "$(line GET /healthz 418 "$J" '{\"status\":\"ok\"}')"
expect_fail "undocumented content type" "content type 'text/html'" \
  "$(line GET /healthz 200 '"content_type":"text/html","headers":{"cache-control":"no-store"}' 'ok')"
expect_fail "missing Cache-Control" "header Cache-Control is required" \
  "$(line GET /healthz 200 '"content_type":"application/json","headers":{}' '{\"status\":\"ok\"}')"
expect_fail "503 without Retry-After" "header Retry-After is required" \
  "$(line GET /readyz 503 "$P" "$(prob not_leader 503 /readyz)")"
expect_fail "problem status differs" "problem status 400 differs from the HTTP status 404" \
  "$(line GET /v1/ledger/accounts/a 404 "$P" "$(prob account_unknown 400 /v1/ledger/accounts/a)")"
expect_fail "amount as a number" "credits_posted must be string" \
  "$(line GET /v1/ledger/accounts/a 200 "$J" "${acct/\\\"2.50\\\"/2.5}")"
expect_fail "unknown error code" "must be equal to one of the allowed values" \
  "$(line GET /v1/ledger/accounts/a 404 "$P" "$(prob no_such_code 404 /v1/ledger/accounts/a)")"
expect_fail "undocumented path" "no operation describes GET /v1/nothing" \
  "$(line GET /v1/nothing 200 "$J" '{}')"
expect_fail "405 on an unknown path" "no operation describes DELETE /v1/nothing" \
  "$(line DELETE /v1/nothing 405 "$P" "$(prob method_not_allowed 405 /v1/nothing)")"
expect_fail "router 404 on a literal path" "status 404 is not documented for GET /healthz" \
  "$(line GET /healthz 404 "$P" "$(prob not_found 404 /healthz)")"
expect_fail "problem member not documented" "must NOT have unevaluated properties" \
  "$(line GET /readyz 503 "$P503" '{\"type\":\"urn:agentclear:error:not_leader\",\"title\":\"t\",\"status\":503,\"code\":\"not_leader\",\"instance\":\"/readyz\",\"results\":[]}')"
expect_fail "405 without Allow" "header Allow is required" \
  "$(line PUT /v1/ledger/transfers 405 "$P" "$(prob method_not_allowed 405 /v1/ledger/transfers)")"
expect_fail "401 without WWW-Authenticate" "header WWW-Authenticate is required" \
  "$(line GET /v1/ledger/accounts/a 401 "$P" "$(prob unauthorized 401 /v1/ledger/accounts/a)")"
expect_fail "signature 401 with the bearer challenge" "header WWW-Authenticate: \"Bearer" \
  "$(line GET /v1/whoami 401 "$P401" "$(prob sig_missing 401 /v1/whoami)")"
expect_fail "empty log" "no responses logged" ""

# a route of the server that the document lacks
{ cat "$src/server/routes.c"; echo '    {"GET",  "/v1/undocumented",  ac_h_whoami,  AC_AUTH_NONE, 0},'; } >"$tmp/routes.c"
rc=0
got=$(node "$v" --routes "$tmp/routes.c" "$tmp/good.jsonl" 2>&1) || rc=$?
if [ $rc -ne 1 ] || ! grep -qF "route GET /v1/undocumented (server/routes.c) is not in the document" <<<"$got"; then
  echo "FAIL: undocumented route: expected exit 1, got $rc:"; echo "$got"; fails=$((fails + 1))
fi

[ $fails -eq 0 ] || exit 1
echo "openapi_validator: correct responses pass; 17 kinds of drift are caught"
