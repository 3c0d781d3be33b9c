#!/usr/bin/env bash
# The ErrorCode enum in docs/openapi.yaml equals the registry (protocol/errors.def, printed by
# `agentclear errors --openapi`), and the check notices a code missing from or added to the
# document (so this test can fail).
set -euo pipefail
src=${AC_SOURCE_DIR:?}
export AC_BINARY=${AC_BINARY:?}
gen="$src/ops/gen-error-enum"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$gen" --check

# the registry has every code of the document and no other
"$AC_BINARY" errors --openapi | sed 's/ *#.*//' | sort >"$tmp/registry"
n=$(wc -l <"$tmp/registry")
[ "$n" -gt 10 ] || { echo "FAIL: only $n codes from the registry"; exit 1; }
grep -q '^- not_found$' "$tmp/registry" || { echo "FAIL: not_found missing from the registry"; exit 1; }

# a document missing one code fails the check
grep -v -- '- json_schema  # 400' "$src/docs/openapi.yaml" >"$tmp/missing.yaml"
if "$gen" --check "$tmp/missing.yaml" >"$tmp/out" 2>&1; then
  echo "FAIL: --check accepted a document without json_schema"; exit 1
fi
grep -q '^+ *- json_schema' "$tmp/out" || { echo "FAIL: the diff does not name json_schema"; cat "$tmp/out"; exit 1; }

# a document with a code the registry does not have fails the check
sed 's/^\( *\)- not_found  # 404$/&\n\1- not_a_code  # 400/' "$src/docs/openapi.yaml" >"$tmp/extra.yaml"
grep -q 'not_a_code' "$tmp/extra.yaml" || { echo "FAIL: could not build the test document"; exit 1; }
if "$gen" --check "$tmp/extra.yaml" >"$tmp/out" 2>&1; then
  echo "FAIL: --check accepted a document with an unknown code"; exit 1
fi
echo "openapi_errors: ErrorCode enum matches the registry ($n codes); mismatches are caught"
