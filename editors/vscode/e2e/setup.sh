#!/bin/sh
# Installs everything the real-editor end-to-end test (tests/test_vscode_e2e.py) needs, idempotently
# and non-interactively; quick when everything is already in place.
#
#   * Debian packages: chromium, ripgrep and the headers code-server's native modules build against
#   * code-server 4.100.3 (VS Code 1.100.3) into $SPARK_LS_E2E_CACHE/code-server, following
#     /work/shared/vscode-e2e/install-code-server.sh (npm registry + Debian only, no GitHub downloads)
#   * `npm ci` in editors/vscode (vscode-languageclient, @vscode/vsce) and editors/vscode/e2e (playwright-core)
#   * editors/vscode/bundled/: the spark-ls server and its libraries (scripts/bundle.py), rebuilt when
#     spark-ls's sources change
#   * editors/vscode/spark-ls.vsix (vsce package --target linux-x64), rebuilt when a packaged file changed
#
# Usage: editors/vscode/e2e/setup.sh          (as root, or with sudo available for apt-get)
# Cache: SPARK_LS_E2E_CACHE (default ~/.cache/spark-ls-e2e).
set -eu

E2E_DIR=$(cd "$(dirname "$0")" && pwd)
EXT_DIR=$(cd "$E2E_DIR/.." && pwd)
CACHE=${SPARK_LS_E2E_CACHE:-${HOME:-/root}/.cache/spark-ls-e2e}
CS_VERSION=4.100.3
CS_DIR="$CACHE/code-server-$CS_VERSION"
export DEBIAN_FRONTEND=noninteractive
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
export npm_config_yes=true

log() { printf '[spark-ls e2e setup] %s\n' "$*" >&2; }
START=$(date +%s)

# --- 1. Debian packages ------------------------------------------------------------------------
APT_PKGS="chromium ripgrep libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev pkg-config make g++ python3"
missing=""
for p in $APT_PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo -n"
    log "apt-get install$missing"
    $SUDO apt-get update -q >&2
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -q --no-install-recommends $missing >&2
else
    log "Debian packages present"
fi
command -v node >/dev/null || { log "node (20+) is required"; exit 1; }
command -v npm >/dev/null || { log "npm is required"; exit 1; }

# --- 2. code-server (the shared recipe, verbatim steps) -------------------------------------------
CS_ENTRY="$CS_DIR/node_modules/code-server/out/node/entry.js"
if [ -f "$CS_DIR/.complete" ] && [ -f "$CS_ENTRY" ]; then
    log "code-server $CS_VERSION present in $CS_DIR"
else
    log "installing code-server $CS_VERSION into $CS_DIR (a few minutes: native modules build from source)"
    rm -rf "$CS_DIR"
    mkdir -p "$CS_DIR/tmp/vscode-ripgrep-cache-1.15.11" "$CS_DIR/rg"
    (
        export TMPDIR="$CS_DIR/tmp"
        # @vscode/ripgrep's postinstall would fetch rg from GitHub; it first looks in this cache file.
        cp "$(command -v rg)" "$CS_DIR/rg/rg"
        tar czf "$TMPDIR/vscode-ripgrep-cache-1.15.11/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" -C "$CS_DIR/rg" rg
        export npm_config_unsafe_perm=true   # code-server's postinstall insists on it
        export npm_config_nodedir=/usr       # node-gyp builds against /usr/include/node, no header download
        cd "$CS_DIR"
        [ -f package.json ] || echo '{"name":"code-server-host","private":true}' > package.json
        npm install --foreground-scripts "code-server@$CS_VERSION" >&2
    )
    [ -f "$CS_ENTRY" ] || { log "code-server install did not produce $CS_ENTRY"; exit 1; }
    # The native module VS Code cannot start without; fail here rather than in the test.
    ls "$CS_DIR"/node_modules/code-server/lib/vscode/node_modules/node-pty/build/Release/pty.node >/dev/null 2>&1 \
        || find "$CS_DIR/node_modules/code-server" -name pty.node | grep -q . \
        || { log "node-pty did not build (see output above)"; exit 1; }
    rm -rf "$CS_DIR/tmp"
    touch "$CS_DIR/.complete"
fi
ln -sfn "$CS_DIR" "$CACHE/code-server"

# --- 3. npm ci in the extension and the driver (skipped when the lockfile is unchanged) -----------
npm_ci() {  # $1 = folder
    stamp="$1/node_modules/.spark-ls-lock.sha256"
    want=$(sha256sum "$1/package-lock.json" | cut -d' ' -f1)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        log "node_modules up to date in $1"
    else
        log "npm ci in $1"
        (cd "$1" && npm ci --no-audit --no-fund >&2)
        echo "$want" > "$stamp"
    fi
}
npm_ci "$EXT_DIR"
npm_ci "$E2E_DIR"

# --- 4. the bundled server (scripts/bundle.py), rebuilt when spark-ls's sources changed --------------
REPO=$(cd "$EXT_DIR/../.." && pwd)
PY=${SPARK_LS_PYTHON:-python3}
stamp="$EXT_DIR/bundled/.sources.sha256"
want=$(cd "$REPO" && find spark_ls grammars -type f \( -name '*.py' -o -name '*.toml' -o -name '*.scm' -o -name '*.json' \) \
        | LC_ALL=C sort | xargs sha256sum | cat - pyproject.toml setup.py requirements.lock "$EXT_DIR/scripts/bundle.py" | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$EXT_DIR/bundled/manifest.json" ]; then
    log "bundled server up to date"
else
    log "bundling the server: $PY scripts/bundle.py"
    "$PY" "$EXT_DIR/scripts/bundle.py" --vsce-target linux-x64 >&2
    echo "$want" > "$stamp"
fi

# --- 5. the VSIX (linux-x64: the bundled binary wheels are that platform's) ------------------------
VSIX="$EXT_DIR/spark-ls.vsix"
sources=$(cd "$EXT_DIR" && ls extension.js lib/*.js bundled/tool/*.py bundled/manifest.json bundled/.sources.sha256 package.json package-lock.json README.md LICENSE .vscodeignore 2>/dev/null || true)
fresh=1
[ -f "$VSIX" ] || fresh=0
if [ $fresh = 1 ]; then
    for f in $sources; do
        if [ "$EXT_DIR/$f" -nt "$VSIX" ]; then fresh=0; fi
    done
fi
if [ $fresh = 1 ]; then
    log "spark-ls.vsix up to date"
else
    log "vsce package -> $VSIX"
    (cd "$EXT_DIR" && ./node_modules/.bin/vsce package --target linux-x64 --allow-missing-repository -o spark-ls.vsix >&2)
fi

log "done in $(( $(date +%s) - START ))s (cache: $CACHE)"
