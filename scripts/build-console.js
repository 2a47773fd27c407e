// The operator console's browser bundle (console/src/, Preact + JSX) built by esbuild into
// dist/console/: index.html, assets/console-<hash>.js and assets/console-<hash>.css. Called by
// scripts/build.js (so `npm ci` builds it through `prepare`) and by src/console/ when a developer
// runs the sources without a build (docs/console.md). The file names carry a content hash, so the
// Neuron can tell browsers to keep them for good; index.html is the only file that changes name
// references and is served with no-cache.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');

/**
 * Builds the console into `outDir` (default dist/console), emptying it first. Returns the paths of
 * the files written, relative to outDir. Throws when esbuild fails (it prints its own errors).
 */
export async function buildConsole({ outDir = path.join(root, 'dist', 'console'), minify = true } = {}) {
  const files = await buildConsoleFiles({ minify });
  rmSync(outDir, { recursive: true, force: true });
  for (const [name, contents] of files) {
    mkdirSync(path.dirname(path.join(outDir, name)), { recursive: true });
    writeFileSync(path.join(outDir, name), contents);
  }
  return [...files.keys()];
}

/**
 * The console's files in memory, by path relative to dist/console (`index.html`,
 * `assets/console-<hash>.js`, ...). The Neuron serves these directly when it runs without a
 * build (src/console/), so nothing is written at run time.
 */
export async function buildConsoleFiles({ minify = true } = {}) {
  const outDir = path.join(root, 'dist', 'console');
  const result = await build({
    absWorkingDir: root,
    entryPoints: { console: 'console/src/main.tsx' },
    outdir: path.join(outDir, 'assets'),
    entryNames: '[name]-[hash]',
    bundle: true,
    format: 'esm',
    platform: 'browser',
    // Browsers of the last few years: every one has ES2020 modules and optional chaining.
    target: ['es2020'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify,
    sourcemap: false,
    legalComments: 'none',
    write: false,
    logLevel: 'warning',
    loader: { '.css': 'css' },
  });
  const files = new Map();
  for (const output of result.outputFiles)
    files.set(path.relative(outDir, output.path).split(path.sep).join('/'), Buffer.from(output.contents));
  const names = [...files.keys()];
  const script = names.find((file) => file.endsWith('.js'));
  const style = names.find((file) => file.endsWith('.css'));
  if (script === undefined || style === undefined) throw new Error('console build: esbuild produced no script or no style sheet');
  const template = readFileSync(path.join(root, 'console', 'index.html'), 'utf8');
  const page = template.replace('%SCRIPT%', `/console/${script}`).replace('%STYLE%', `/console/${style}`);
  return new Map([['index.html', Buffer.from(page)], ...files]);
}

// `node scripts/build-console.js` builds just the console.
if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  try {
    const files = await buildConsole();
    process.stdout.write(`console built: ${files.join(', ')}\n`);
  } catch {
    process.exit(1);
  }
}
