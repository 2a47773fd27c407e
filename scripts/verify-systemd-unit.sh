#!/usr/bin/env bash
# Checks deploy/neuron.service with `systemd-analyze verify` (run by .ci/run).
#
# verify also checks that ExecStart's program exists; the unit names /usr/bin/node (Debian's and
# nodesource's path), which a build machine with Node elsewhere lacks. So a copy is verified, with
# that path replaced by this machine's `command -v node`; everything else is verified as written.
# verify reports unknown keys and unparsable values only as warnings and still exits 0: any output
# at all fails this check too, since a clean unit prints nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

unit=deploy/neuron.service
node_path="$(command -v node)"
work="$(mktemp -d -t neuron-unit.XXXXXX)"
trap 'rm -rf "$work"' EXIT
grep -q '^ExecStart=/usr/bin/node ' "$unit" || { echo "$unit: ExecStart no longer starts /usr/bin/node; update $0"; exit 1; }
sed "s#^ExecStart=/usr/bin/node #ExecStart=${node_path} #" "$unit" >"$work/neuron.service"

set +e
output="$(systemd-analyze verify "$work/neuron.service" 2>&1)"
status=$?
set -e
if [ $status -ne 0 ] || [ -n "$output" ]; then
  echo "$output"
  echo "systemd-analyze verify found problems in $unit (exit status $status)"
  exit 1
fi
echo "$unit: systemd-analyze verify found no problems"
