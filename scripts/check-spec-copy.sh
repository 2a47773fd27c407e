#!/usr/bin/env bash
# Checks that spec/ still matches the network's shared/spec/ (CI has it at ../shared/spec; pass
# another folder as $1). Outside npm test on purpose: a bare clone has nothing beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
shared="${1:-../shared/spec}"
if [ ! -d "$shared" ]; then
  echo "check-spec-copy: $shared does not exist; nothing to compare" >&2
  exit 1
fi
(cd "$shared" && sha256sum -c --quiet "$OLDPWD/spec/SHA256SUMS") || {
  echo "spec/ differs from $shared: copy the network's files into spec/ and regenerate spec/SHA256SUMS" >&2
  exit 1
}
echo "spec/ matches $shared"
