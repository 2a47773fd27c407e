#!/usr/bin/env node
// Builds the package: dist/ from src/ with tsc (JavaScript and .d.ts, tests left out). Run by
// `npm pack` (prepack) and by the repository's `npm run build`, before the server bundle.
// dist/ is emptied first, so nothing of a deleted source survives.
//
// tsc rewrites the sources' relative `./x.ts` imports to `./x.js` in the JavaScript
// (rewriteRelativeImportExtensions) but leaves them as written in the declarations; a consumer's
// compiler then needs allowImportingTsExtensions to read them. So the declarations get the same
// rewrite here, which is what tsc does for the JavaScript.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = import.meta.dirname;
const dist = path.join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const result = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
if (result.status !== 0) {
  rmSync(dist, { recursive: true, force: true });
  process.exit(result.status ?? 1);
}

const RELATIVE_TS_SPECIFIER = /((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]+)\.ts(['"])/g;
for (const entry of readdirSync(dist, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith('.d.ts')) continue;
  const file = path.join(entry.parentPath, entry.name);
  const text = readFileSync(file, 'utf8');
  const rewritten = text.replace(RELATIVE_TS_SPECIFIER, '$1$2.js$3');
  if (rewritten !== text) writeFileSync(file, rewritten);
}
