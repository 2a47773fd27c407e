/**
 * scripts/build.js builds beside dist/ and swaps the result in only when every step succeeded
 * (issue 17, item 2): a failed or interrupted build never leaves dist/ without a working bundle.
 * The steps are injected (the real console step plus synthetic ones), so the test builds in a temp
 * directory in a second instead of running tsc and the server bundle.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

type Step = (outDir: string) => Promise<void>;
interface BuildScript {
  buildDist(options: { dist: string; steps: Step[] }): Promise<void>;
  buildConsoleInto: Step;
}
const script = pathToFileURL(path.resolve(import.meta.dirname, '..', '..', 'scripts', 'build.js')).href;
const { buildDist, buildConsoleInto } = (await import(script)) as BuildScript;

const OLD_BUILD_TIME = new Date('2026-01-02T03:04:05Z');
// A pid above Linux's largest pid_max (2^22): no process has it, so its folders count as leftovers.
const DEAD_PID = 99_999_999;
const temps: string[] = [];
after(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

/** A checkout-like folder with a previous, working dist/ (a marker file and its .built stamp). */
function withPreviousBuild(): { parent: string; dist: string } {
  const parent = mkdtempSync(path.join(tmpdir(), 'neuron-build-'));
  temps.push(parent);
  const dist = path.join(parent, 'dist');
  mkdirSync(path.join(dist, 'server'), { recursive: true });
  writeFileSync(path.join(dist, 'server', 'main.js'), 'export const build = "previous";\n');
  writeFileSync(path.join(dist, '.built'), '');
  utimesSync(path.join(dist, '.built'), OLD_BUILD_TIME, OLD_BUILD_TIME);
  return { parent, dist };
}

function assertPreviousBuildIntact(parent: string, dist: string): void {
  assert.equal(readFileSync(path.join(dist, 'server', 'main.js'), 'utf8'), 'export const build = "previous";\n');
  assert.equal(statSync(path.join(dist, '.built')).mtimeMs, OLD_BUILD_TIME.getTime());
  assert.deepEqual(readdirSync(parent), ['dist'], 'no half-built folder is left beside dist/');
}

const writeServer: Step = async (outDir) => {
  mkdirSync(path.join(outDir, 'server'), { recursive: true });
  writeFileSync(path.join(outDir, 'server', 'main.js'), 'export const build = "new";\n');
};
const failing: Step = async () => {
  throw new Error('injected failure');
};

describe('scripts/build.js', () => {
  it('leaves the previous dist/ intact when a step fails after others wrote output', async () => {
    const { parent, dist } = withPreviousBuild();
    await assert.rejects(buildDist({ dist, steps: [buildConsoleInto, writeServer, failing] }), /injected failure/);
    assertPreviousBuildIntact(parent, dist);
    assert.equal(existsSync(path.join(dist, 'console')), false, 'the new console did not land in dist/');
  });

  it('swaps the complete build in, stamped with its start time, and drops files of the previous one', async () => {
    const { parent, dist } = withPreviousBuild();
    writeFileSync(path.join(dist, 'deleted-source.js'), '');
    const before = Date.now();
    await buildDist({ dist, steps: [writeServer, buildConsoleInto] });
    assert.equal(readFileSync(path.join(dist, 'server', 'main.js'), 'utf8'), 'export const build = "new";\n');
    assert.ok(existsSync(path.join(dist, 'console', 'index.html')));
    assert.equal(existsSync(path.join(dist, 'deleted-source.js')), false);
    const stamp = statSync(path.join(dist, '.built')).mtimeMs;
    assert.ok(stamp >= before - 1_000 && stamp <= Date.now(), 'dist/.built carries the build start time');
    assert.deepEqual(readdirSync(parent), ['dist']);
  });

  it('cleans up after a killed build, putting back a dist/ it had moved aside', async () => {
    const { parent, dist } = withPreviousBuild();
    mkdirSync(path.join(parent, `dist.next-${DEAD_PID}`, 'server'), { recursive: true });
    // Killed between its two renames: dist/ moved aside, the new one not yet in place.
    renameSync(dist, path.join(parent, `dist.prev-${DEAD_PID}`));
    await assert.rejects(buildDist({ dist, steps: [failing] }), /injected failure/);
    assertPreviousBuildIntact(parent, dist);
  });
});
