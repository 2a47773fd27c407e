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
// dist/ is emptied first, so nothing of a deleted source survives. dist/.built is written last,
// only when everything built, with the time the build started as its mtime: bin/neuron.js runs
// dist/server/ only when that file exists and no source under src/ is newer, so an edit made
// during or after the build is never ignored (it then runs the sources through tsx).
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, rmSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { build } from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');
const dist = path.join(root, 'dist');
const startedAt = new Date();

/**
 * Dependencies given chunks of their own rather than one ~1.5 MB module with everything. V8 parses
 * and compiles a module's top level in one go, in native memory that the C library keeps after it
 * is freed; for one such module that was ~10 MB held for the life of the process (idle RSS 85 MB
 * instead of 75 MB, docs/benchmarks.md). These are the largest dependencies loaded at start;
 * undici and the demo already get chunks of their own because they are loaded on first use.
 */
const SEPARATE_CHUNKS = ['fastify', 'ajv', 'kysely', 'typebox', 'ws', 'prom-client', 'commander', '@fastify/swagger'];

/** Leaves no half-trusted output behind (without dist/.built the bin ignores it anyway) and exits. */
function fail(status) {
  rmSync(dist, { recursive: true, force: true });
  process.exit(status);
}

rmSync(dist, { recursive: true, force: true });

let tsc = null;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  process.stderr.write(
    'neuron build: TypeScript is not installed (a production install without dev dependencies?), so the\n' +
      '  client package (packages/client/dist) was not built; the server bundle is built all the same.\n',
  );
}
if (tsc !== null) {
  const result = spawnSync(process.execPath, [path.join(root, 'packages', 'client', 'build.js')], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) fail(result.status ?? 1);
}

try {
  await build({
    absWorkingDir: root,
    // The command, plus one entry per large dependency (SEPARATE_CHUNKS, below) whose only purpose
    // is to give that dependency a chunk of its own: with code splitting, esbuild puts each module
    // in the chunk of the set of entries that reach it.
    entryPoints: { main: 'src/cli/main.ts', ...Object.fromEntries(SEPARATE_CHUNKS.map((name) => [`chunks/${name.replace('/', '-')}`, name])) },
    outdir: 'dist/server',
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
    banner: { js: "import { createRequire as __neuronCreateRequire } from 'node:module'; const require = __neuronCreateRequire(import.meta.url);" },
  });
} catch {
  // esbuild has printed its errors.
  fail(1);
}

await (await import('./build-console.js')).buildConsole({ outDir: path.join(dist, 'console') }).catch((error) => { process.stderr.write(`neuron build: console: ${error.message}\n`); fail(1); }); // the operator console (docs/console.md)

const stamp = path.join(dist, '.built');
closeSync(openSync(stamp, 'w'));
utimesSync(stamp, startedAt, startedAt);
