#!/usr/bin/env node
// `npm run build` (also run by `prepare`, so `npm ci` builds it). Two outputs in dist/:
//
// - dist/server/: the `neuron` command bundled by esbuild into a few minified ES modules, which
//   bin/neuron.js runs. Bundled, tree-shaken and minified, the running server holds ~20 MB less
//   memory than the same code as ~300 separate modules (V8 keeps every module's source text,
//   scope data and module record for the life of the process: docs/benchmarks.md, "Idle
//   memory"). Linked source maps (dist/server/*.map) give readable stack traces with
//   `node --enable-source-maps`. esbuild comes with tsx, a runtime dependency, so a production
//   install without dev dependencies still builds it.
// - packages/client/dist/, first: the client package (neuron-careagent-client, its README.md),
//   JavaScript and declarations built by its own build.js with tsc. Needs TypeScript (a dev
//   dependency): without it, this part is skipped with a note. The server bundle does not need it:
//   tsconfig.json's `paths` map the package's name to its sources, which esbuild bundles.
//
// The build never empties dist/ before the new build is complete: every part (tsc, the server
// bundle, the console) is written into a folder beside it (dist.next-<pid>/, same file system), and
// only when all of them succeeded is that folder swapped in by two renames (dist/ -> dist.prev-<pid>/,
// dist.next-<pid>/ -> dist/), then the old one is removed. A failed or interrupted build leaves the
// previous dist/ as it was (a running Neuron keeps its bundle, bin/neuron.js keeps using it); its
// half-written folder is removed on failure, or by the next build when the process was killed.
// The whole tree is swapped, not each subfolder, so dist/server, dist/console and the client library
// always come from the same build. Node has no atomic exchange of two directories (renameat2's
// RENAME_EXCHANGE), so between the two renames (microseconds) dist/ is absent; bin/neuron.js then
// runs the sources through tsx rather than a half-built bundle. Nothing of a deleted source survives,
// since the new folder starts empty.
//
// dist/.built is written last, only when everything built, with the time the build started as its
// mtime: bin/neuron.js runs dist/server/ only when that file exists and no source under src/ is
// newer, so an edit made during or after the build is never ignored (it then runs the sources
// through tsx). The rename keeps that mtime.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { build } from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');
const NEXT_PREFIX = 'dist.next-';
const PREVIOUS_PREFIX = 'dist.prev-';

/**
 * Dependencies given chunks of their own rather than one ~1.5 MB module with everything. V8 parses
 * and compiles a module's top level in one go, in native memory that the C library keeps after it
 * is freed; for one such module that was ~10 MB held for the life of the process (idle RSS 85 MB
 * instead of 75 MB, docs/benchmarks.md). These are the largest dependencies loaded at start;
 * undici and the demo already get chunks of their own because they are loaded on first use.
 */
const SEPARATE_CHUNKS = ['fastify', 'ajv', 'kysely', 'typebox', 'ws', 'prom-client', 'commander', '@fastify/swagger'];

/**
 * The client package (packages/client: neuron-careagent-client), JavaScript and declarations in its
 * own packages/client/dist/ by its build.js; skipped without TypeScript. The server bundle does not
 * need it (tsconfig.json's `paths` map the package's name to its sources, which esbuild bundles), so
 * it is built in its own folder rather than swapped in with dist/.
 */
export async function compileClient() {
  try {
    createRequire(import.meta.url).resolve('typescript/bin/tsc');
  } catch {
    process.stderr.write(
      'neuron build: TypeScript is not installed (a production install without dev dependencies?), so the\n' +
        '  client package (packages/client/dist) was not built; the server bundle is built all the same.\n',
    );
    return;
  }
  const result = spawnSync(process.execPath, [path.join(root, 'packages', 'client', 'build.js')], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`the client package build failed (exit status ${result.status ?? result.signal})`);
}

/** The `neuron` command bundled into outDir/server. Throws when esbuild fails (it prints its errors). */
export async function bundleServer(outDir) {
  await build({
    absWorkingDir: root,
    // The command, plus one entry per large dependency (SEPARATE_CHUNKS, above) whose only purpose
    // is to give that dependency a chunk of its own: with code splitting, esbuild puts each module
    // in the chunk of the set of entries that reach it.
    entryPoints: {
      main: 'src/cli/main.ts',
      ...Object.fromEntries(SEPARATE_CHUNKS.map((name) => [`chunks/${name.replace('/', '-')}`, name])),
    },
    outdir: path.join(outDir, 'server'),
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    minify: true,
    // Error classes and the names that logs and problem documents show keep their own names.
    keepNames: true,
    sourcemap: 'linked',
    sourcesContent: false,
    logLevel: 'warning',
    // Kept as packages: the native SQLite driver; the PostgreSQL driver (loaded only for a
    // PostgreSQL URL); pino, whose pretty transport runs pino-pretty in a worker thread that
    // loads the packages by name; swagger-ui, which serves its own files from its package folder.
    external: ['better-sqlite3', 'pg', 'pino', 'pino-pretty', 'thread-stream', '@fastify/swagger-ui'],
    // Bundled CommonJS code calls require() for those packages and for Node's own modules; an ES
    // module has no require of its own, so each output file gets one.
    banner: {
      js: "import { createRequire as __neuronCreateRequire } from 'node:module'; const require = __neuronCreateRequire(import.meta.url);",
    },
  });
}

/** The operator console (docs/console.md) into outDir/console. */
export async function buildConsoleInto(outDir) {
  const { buildConsole } = await import('./build-console.js');
  await buildConsole({ outDir: path.join(outDir, 'console') });
}

export const BUILD_STEPS = [compileClient, bundleServer, buildConsoleInto];

/** Whether a process with this id is running (a build's folder is left alone while its builder lives). */
function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

/**
 * Removes dist.next-<pid>/ and dist.prev-<pid>/ folders left by builds that were killed. A build
 * killed between its two renames left no dist/ but a complete dist.prev-<pid>/: that one is put back.
 */
function removeLeftovers(parent, dist) {
  for (const name of readdirSync(parent)) {
    const prefix = [NEXT_PREFIX, PREVIOUS_PREFIX].find((p) => name.startsWith(p));
    if (prefix === undefined) continue;
    const pid = Number(name.slice(prefix.length));
    if (Number.isInteger(pid) && pid !== process.pid && alive(pid)) continue; // a build running now
    if (prefix === PREVIOUS_PREFIX && !existsSync(dist) && existsSync(path.join(parent, name, '.built'))) {
      renameSync(path.join(parent, name), dist);
      continue;
    }
    rmSync(path.join(parent, name), { recursive: true, force: true });
  }
}

/**
 * Builds everything into a folder beside `dist` and swaps it in only when every step succeeded.
 * On failure the folder is removed, `dist` is untouched, and the error is rethrown.
 */
export async function buildDist({ dist = path.join(root, 'dist'), steps = BUILD_STEPS } = {}) {
  const startedAt = new Date();
  const parent = path.dirname(dist);
  removeLeftovers(parent, dist);
  const next = path.join(parent, `${NEXT_PREFIX}${process.pid}`);
  const previous = path.join(parent, `${PREVIOUS_PREFIX}${process.pid}`);
  mkdirSync(next);
  try {
    for (const step of steps) await step(next);
    const stamp = path.join(next, '.built');
    closeSync(openSync(stamp, 'w'));
    utimesSync(stamp, startedAt, startedAt);
  } catch (error) {
    rmSync(next, { recursive: true, force: true });
    throw error;
  }
  const hadDist = existsSync(dist);
  if (hadDist) renameSync(dist, previous);
  renameSync(next, dist);
  if (hadDist) rmSync(previous, { recursive: true, force: true });
}

// `node scripts/build.js` (npm run build, prepare) builds dist/.
if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  try {
    await buildDist();
  } catch (error) {
    // esbuild and tsc have printed their own errors; the previous dist/ is untouched.
    process.stderr.write(`neuron build: failed, dist/ left as it was: ${error.message}\n`);
    process.exit(1);
  }
}
