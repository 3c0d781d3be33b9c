#!/usr/bin/env bash
# ops/npm-clients.sh DIR -- install the independent npm clients used by the conformance tests
# (http-message-signatures, jose, cbor, @redocly/cli) into DIR, at the exact versions pinned by
# ops/npm/package.json and ops/npm/package-lock.json. Nothing is vendored: the manifest is in the
# repository, the packages come from the npm registry at test time.
#
#   ops/npm-clients.sh /tmp/ac-npm && export AC_NPM_DIR=/tmp/ac-npm
#
# Non-interactive (CI=true, no stdin, --no-audit --no-fund). A DIR already installed from the same
# manifest is reused without touching the network. Exits non-zero with a message on stderr when
# node or npm is missing or too old, or when npm cannot install (registry unreachable, ...).
# Environment: AC_NPM_TIMEOUT (seconds for the whole install, default 600).
set -euo pipefail

AC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
manifest_dir="$AC_ROOT/ops/npm"
me="npm-clients"

die() {
    printf '[%s] error: %s\n' "$me" "$*" >&2
    exit 1
}
log() { printf '[%s] %s\n' "$me" "$*" >&2; }

[ $# -eq 1 ] && [ -n "$1" ] || die "usage: ops/npm-clients.sh DIR"
dir=$1

command -v node >/dev/null 2>&1 || die "node not found (ops/lib/common.sh ac_install_deps installs it)"
command -v npm >/dev/null 2>&1 || die "npm not found (ops/lib/common.sh ac_install_deps installs it)"
# The oldest Node.js every pinned package supports (see "engines" in ops/npm/package.json).
node -e '
  const [a, b] = process.versions.node.split(".").map(Number);
  process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1);' ||
    die "node $(node --version) is too old: the pinned clients need Node.js >= 20.19"

stamp_of() {
    cat "$manifest_dir/package.json" "$manifest_dir/package-lock.json" | sha256sum | cut -d' ' -f1
}
want=$(stamp_of)

# Every pinned direct dependency is present at its pinned version.
installed_ok() {
    node -e '
      const fs = require("fs"), path = require("path");
      const dir = process.argv[1];
      const want = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")).dependencies;
      for (const [name, version] of Object.entries(want)) {
        const pj = path.join(dir, "node_modules", name, "package.json");
        let got = null;
        try { got = JSON.parse(fs.readFileSync(pj, "utf8")).version; } catch (e) {}
        if (got !== version) {
          console.error(`${name}: want ${version}, have ${got === null ? "none" : got}`);
          process.exit(1);
        }
      }' "$dir"
}

if [ -f "$dir/.agentclear-npm-stamp" ] && [ "$(cat "$dir/.agentclear-npm-stamp")" = "$want" ] &&
    installed_ok 2>/dev/null; then
    log "reusing $dir (same manifest)"
    exit 0
fi

mkdir -p "$dir"
rm -rf "$dir/node_modules" "$dir/.agentclear-npm-stamp"
cp "$manifest_dir/package.json" "$manifest_dir/package-lock.json" "$dir/"

log "installing pinned clients into $dir"
npm_log="$dir/npm-install.log"
status=0
(
    cd "$dir"
    CI=true NO_UPDATE_NOTIFIER=1 timeout "${AC_NPM_TIMEOUT:-600}" \
        npm ci --no-audit --no-fund --prefer-offline --ignore-scripts --loglevel=warn \
        --fetch-retries=2 --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=10000 \
        </dev/null >"$npm_log" 2>&1
) || status=$?
if [ $status -ne 0 ]; then
    grep -v 'Unknown user config' "$npm_log" | tail -20 >&2 || true
    registry=$(npm config get registry 2>/dev/null || echo "?")
    if [ $status -eq 124 ]; then
        die "npm ci timed out after ${AC_NPM_TIMEOUT:-600}s (registry $registry unreachable?)"
    elif grep -qE 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|network' \
        "$npm_log"; then
        die "npm registry $registry is unreachable: cannot install the conformance clients"
    fi
    die "npm ci failed (exit $status); full log: $npm_log"
fi
installed_ok || die "npm ci finished but the pinned versions are not in $dir/node_modules"
printf '%s\n' "$want" >"$dir/.agentclear-npm-stamp.tmp"
mv "$dir/.agentclear-npm-stamp.tmp" "$dir/.agentclear-npm-stamp"
log "installed: $(node -p 'Object.entries(require(process.argv[1]).dependencies).map(([n, v]) => n + "@" + v).join(" ")' "$dir/package.json")"
