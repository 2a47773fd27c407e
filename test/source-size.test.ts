/**
 * Issue 14's size rule: no source file over 500 lines (functions over 80 lines are Biome's
 * complexity/noExcessiveLinesPerFunction, configured in biome.jsonc). A file past the limit is a
 * file doing more than one job; split it by responsibility. Tests, migrations and the config
 * schema's tables are exempt: they are lists read one entry at a time.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
/** The most lines a source file may have (issue 14). */
const MAX_FILE_LINES = 500;
/** The production and tooling sources the rule covers. */
const COVERED = /^(src|packages\/[^/]+\/src|console\/src|bench|scripts|stress)\/.*\.(ts|tsx|js|css)$/;
/** Lists read one entry at a time: tests, migrations, the config schema's tables. */
const EXEMPT = /\.test\.ts$|\/migrations\/|^src\/foundation\/config\/schema\.ts$/;
/**
 * Files still over the limit, each a debt to pay, not a licence; the lead empties this list when
 * the branches of issue 14 merge.
 */
const ALLOWED_OVER_LIMIT = new Set<string>([]);

/** Where the covered sources live; build output and installed packages below them are not sources. */
const SOURCE_ROOTS = ['src', 'packages', 'console/src', 'bench', 'scripts', 'stress'];
const NOT_SOURCE = /(^|\/)(node_modules|dist)\//;

/**
 * Every file the rule covers, relative to the repository root. Read from the file system, not
 * from git: the suite also runs in copies without a .git (scripts/test-on-node24.sh).
 */
function coveredFiles(): string[] {
  return SOURCE_ROOTS.filter((root) => existsSync(path.join(ROOT, root)))
    .flatMap((root) => readdirSync(path.join(ROOT, root), { recursive: true, encoding: 'utf8' }).map((file) => `${root}/${file}`))
    .filter((file) => !NOT_SOURCE.test(file) && COVERED.test(file) && !EXEMPT.test(file));
}

function lineCount(file: string, root = ROOT): number {
  const text = readFileSync(path.join(root, file), 'utf8');
  return text.endsWith('\n') ? text.split('\n').length - 1 : text.split('\n').length;
}

/** Files over the limit that are not on the allow-list, as `path (lines)`. */
function oversized(files: string[], allowed: Set<string>, root = ROOT): string[] {
  return files
    .map((file) => ({ file, lines: lineCount(file, root) }))
    .filter(({ file, lines }) => lines > MAX_FILE_LINES && !allowed.has(file))
    .map(({ file, lines }) => `${file} (${lines})`);
}

describe('source file size', () => {
  it(`keeps every source file at ${MAX_FILE_LINES} lines or fewer`, () => {
    assert.deepEqual(oversized(coveredFiles(), ALLOWED_OVER_LIMIT), [], 'split these files by responsibility');
  });

  it('lists on the allow-list only files that still need it', () => {
    const stale = [...ALLOWED_OVER_LIMIT].filter((file) => {
      try {
        return lineCount(file) <= MAX_FILE_LINES;
      } catch {
        return true; // gone or moved
      }
    });
    assert.deepEqual(stale, [], 'remove these from ALLOWED_OVER_LIMIT: they fit now');
  });

  it('notices a file one line over the limit, and not one at the limit', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'neuron-size-'));
    try {
      writeFileSync(path.join(dir, 'at-limit.ts'), 'export {};\n'.repeat(MAX_FILE_LINES));
      writeFileSync(path.join(dir, 'over-limit.ts'), 'export {};\n'.repeat(MAX_FILE_LINES + 1));
      assert.deepEqual(oversized(['at-limit.ts', 'over-limit.ts'], new Set(), dir), [`over-limit.ts (${MAX_FILE_LINES + 1})`]);
      assert.deepEqual(oversized(['over-limit.ts'], new Set(['over-limit.ts']), dir), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.ok(coveredFiles().includes('src/main.ts'), 'the scan sees the sources');
  });
});
