# SPDX-License-Identifier: MIT
# node_env.sh - sourced by the Node client tests. Installs the pinned npm
# packages (tests/clients/node/package.json) into a directory of the BUILD
# tree, never the source tree: third-party code must not sit among our tests.
# Each test gets its own directory (ctest runs tests in parallel; two npm
# installs into one folder would race); ~/.npm caches the downloads.
#
#   node_setup NAME   -> sets node_dir to $CAIRN_BUILD_DIR/node-clients/NAME,
#                        holding package.json, our *.js and node_modules/
# Needs fail() from the caller. A missing prerequisite is a failure, never a skip.

node_setup() {
    local name=$1 src
    src=$(cd "$(dirname "${BASH_SOURCE[0]}")/node" && pwd)
    [ -n "${CAIRN_BUILD_DIR:-}" ] || fail "CAIRN_BUILD_DIR is not set (npm installs into the build tree)"
    command -v node >/dev/null || fail "node is not on PATH (Node 20 is required)"
    command -v npm >/dev/null || fail "npm is not on PATH"
    local major
    major=$(node -p 'process.versions.node.split(".")[0]')
    [ "$major" -ge 18 ] || fail "node $(node --version) is too old (need 18+)"
    node_dir="$CAIRN_BUILD_DIR/node-clients/$name"
    mkdir -p "$node_dir" || fail "cannot create $node_dir"
    cp "$src/package.json" "$src"/*.js "$node_dir/" || fail "cannot copy $src into $node_dir"
    (cd "$node_dir" && npm install --no-audit --no-fund --loglevel=error) ||
        fail "npm install of $src/package.json in $node_dir failed"
}
