#!/usr/bin/env node
// `npm run build` (also run by `prepare`, so `npm ci` builds it): compiles src/ to dist/ with tsc
// (tsconfig.build.json) so that bin/neuron.js runs plain JavaScript instead of loading TypeScript
// through tsx's loader thread (about 40 MB of memory for the life of the process).
//
// dist/ is emptied first, so no module of a deleted source survives. dist/.built is written last,
// only when tsc succeeded, with the time the build started as its mtime: bin/neuron.js runs dist/
// only when that file exists and no source under src/ is newer, so an edit made during or after
// the build is never ignored.
//
// Without TypeScript installed (`npm ci --omit=dev`), there is nothing to build with: say so and
// succeed, so that the install still works; bin/neuron.js then runs the sources through tsx.
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, rmSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const dist = path.join(root, 'dist');
const startedAt = new Date();

let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  process.stderr.write(
    'neuron build: TypeScript is not installed (a production install without dev dependencies?), so dist/ was not built;\n' +
      '  bin/neuron.js will run the sources through tsx, which costs about 40 MB more memory.\n' +
      '  Build with a full `npm ci`, then `npm prune --omit=dev` (docs/deployment.md).\n',
  );
  process.exit(0);
}

rmSync(dist, { recursive: true, force: true });
const result = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
if (result.status !== 0) {
  // Leave no half-trusted output behind: without dist/.built the bin would ignore it anyway.
  rmSync(dist, { recursive: true, force: true });
  process.exit(result.status ?? 1);
}
const stamp = path.join(dist, '.built');
closeSync(openSync(stamp, 'w'));
utimesSync(stamp, startedAt, startedAt);
