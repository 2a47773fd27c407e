#!/usr/bin/env bash
# What third-party and agent developers install: packs the client package (packages/client,
# neuron-careagent-client) as `npm publish` would, installs the tarball into a fresh ESM project
# in a temporary directory, and checks that
#   - the tarball holds the built JavaScript and declarations, no sources or tests;
#   - the install pulls none of the server's dependencies (only the package's own);
#   - both entry points import under plain Node, without tsx;
#   - a consumer using the public API type-checks under `tsc --strict` WITHOUT skipLibCheck, on
#     TypeScript 5.9 and on TypeScript 7 (the `typescript@7` package, the native compiler), so
#     every type the declarations mention comes with the package's own dependencies.
# Called by .ci/run; takes a few tens of seconds (npm installs from its cache after the first run).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d -t neuron-client-package.XXXXXX)"
trap 'rm -rf "$work"' EXIT

echo "== npm pack (packages/client; prepack builds dist/)"
tarball="$(cd "$root/packages/client" && npm pack --silent --pack-destination "$work" | tail -n 1)"
echo "$tarball"
contents="$(tar -tzf "$work/$tarball")"
for required in package/dist/client/index.js package/dist/client/index.d.ts package/dist/protocol/index.js package/dist/protocol/index.d.ts package/README.md; do
  grep -qx "$required" <<<"$contents" || { echo "the tarball lacks $required"; exit 1; }
done
if grep -E '(^package/src/|\.test\.|\.ts$)' <<<"$contents" | grep -v '\.d\.ts$'; then
  echo "the tarball carries sources or tests (above)"
  exit 1
fi

echo "== a fresh ESM project with the tarball and TypeScript 5.9"
project="$work/consumer"
mkdir -p "$project"
cat >"$project/package.json" <<'JSON'
{ "name": "client-package-consumer", "private": true, "type": "module" }
JSON
cat >"$project/tsconfig.json" <<'JSON'
{
  "compilerOptions": {
    "target": "ES2022",
    "module": "NodeNext",
    "moduleResolution": "NodeNext",
    "strict": true,
    "noEmit": true,
    "skipLibCheck": false
  },
  "files": ["consumer.ts"]
}
JSON
cp "$root/scripts/client-package/consumer.ts" "$project/consumer.ts"
(cd "$project" && npm install --silent --no-audit --no-fund "$work/$tarball" typescript@5.9)

echo "== none of the server's dependencies"
installed="$(cd "$project/node_modules" && ls -d * @*/* 2>/dev/null)"
for server_only in fastify @fastify better-sqlite3 pg pino pino-pretty kysely prom-client commander bonjour-service undici esbuild tsx preact; do
  if grep -qE "^${server_only}(/|$)" <<<"$installed"; then
    echo "installing the client package pulled in the server's dependency $server_only"
    exit 1
  fi
done
echo "$installed" | tr '\n' ' '; echo

echo "== both entry points import under plain Node"
(cd "$project" && node --input-type=module -e "
  const client = await import('neuron-careagent-client');
  const protocol = await import('neuron-careagent-client/protocol');
  for (const name of ['generatePatientKeys', 'createConsentToken', 'establishRelationship', 'verifyAttestation', 'verifyProviderNotice', 'readProviderFeed']) {
    if (typeof client[name] !== 'function') throw new Error('neuron-careagent-client lacks ' + name);
  }
  if (typeof protocol.verifyConsentToken !== 'function') throw new Error('neuron-careagent-client/protocol lacks verifyConsentToken');
")

echo "== tsc --strict, no skipLibCheck: TypeScript $(cd "$project" && npx tsc --version)"
(cd "$project" && npx tsc -p tsconfig.json)

echo "== the same with TypeScript 7"
mkdir -p "$work/ts7"
(cd "$work/ts7" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund typescript@7)
echo "$("$work/ts7/node_modules/.bin/tsc" --version)"
(cd "$project" && "$work/ts7/node_modules/.bin/tsc" -p tsconfig.json)

echo "client package: packed, installed alone, imports, and type-checks strictly on TypeScript 5.9 and 7"
