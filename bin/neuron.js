#!/usr/bin/env -S node --max-semi-space-size=2
// The `neuron` command. It runs the bundled JavaScript in dist/server/ (`npm run build`, run by `npm ci`)
// when that build is present and no source under src/ is newer than it; otherwise it runs the
// TypeScript sources through tsx's loader, so a developer's edits are never ignored. Which one
// ran is printed with NODE_DEBUG=neuron.
//
// The shebang's --max-semi-space-size=2 caps V8's young generation at 2 MB per semi-space (V8's
// default grows to 16 MB and keeps it): about 23 MB less idle and 26 MB less peak memory for about
// 4 % more CPU per handshake (more frequent scavenges; 1 MB saved 3 MB more for 6 %, 4 MB cost
// 5 MB for 2 %: docs/benchmarks.md, "Idle memory"). The main thread's heap is configured before
// any code runs, so only the command line can set it. The shebang applies when the file is
// executed (`./bin/neuron.js`, an installed `neuron`); `node bin/neuron.js` must pass the flag
// itself, as the npm scripts, the bench and the systemd unit (deploy/neuron.service) do.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { debuglog } from 'node:util';
import v8 from 'node:v8';

const debug = debuglog('neuron');
const root = path.resolve(import.meta.dirname, '..');
const src = path.join(root, 'src');
// The client package's sources are bundled into dist/server/ too (tsconfig.json maps its name to them).
const clientSrc = path.join(root, 'packages', 'client', 'src');

/** Whether any compiled source under `dir` (tests and test support excluded) was modified after `since` (ms). */
function sourceNewerThan(dir, since) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (sourceNewerThan(file, since)) return true;
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') && entry.name !== 'test-support.ts') {
      if (statSync(file).mtimeMs > since) return true;
    }
  }
  return false;
}

/** Why dist/ cannot be used, or null when it can. */
function distProblem() {
  let built;
  try {
    // Written by scripts/build.js after a successful build, dated when that build started.
    built = statSync(path.join(root, 'dist', '.built')).mtimeMs;
  } catch {
    return 'dist/ is not built (npm run build)';
  }
  if (sourceNewerThan(src, built)) return 'src/ changed since dist/ was built';
  return sourceNewerThan(clientSrc, built) ? 'packages/client/src/ changed since dist/ was built' : null;
}

const problem = distProblem();
let runCli;
if (problem === null) {
  debug('running the build in dist/server/');
  ({ runCli } = await import('../dist/server/main.js'));
} else {
  debug('%s: running the sources in src/ through tsx', problem);
  // tsx compiles TypeScript in a loader thread of its own, which lives as long as the process. Its
  // heap is configured when the thread starts (below): a young generation of at most 2 MB per
  // semi-space instead of V8's 16 MB keeps ~20 MB of idle RSS off the Neuron; the thread only
  // transforms source files, at start-up.
  v8.setFlagsFromString('--max-semi-space-size=2');
  const { register } = await import('tsx/esm/api');
  // The repository's tsconfig.json, whatever the working directory: its `paths` map the client
  // package's name to its sources, as in the tests and the bundle.
  register({ tsconfig: path.join(root, 'tsconfig.json') });
  ({ runCli } = await import('../src/cli/main.ts'));
}
process.exitCode = await runCli(process.argv);
