/**
 * The WebSocket library at a version with the fixes the handshake relies on: ws 8.23.0 or later
 * (among others, its default limit on message fragments, which stops a flood of empty
 * continuation frames; test/hardening/fuzz.ts sends one). Checked where it matters: the copy
 * actually installed, the lock file CI installs from (`npm ci`), and the range package.json allows.
 * `npm audit --audit-level=high` runs in CI (.ci/run).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './process.ts';

const MINIMUM = '8.23.0';

/** [major, minor, patch] of a plain x.y.z version; prerelease tags count as below the release. */
function parse(version: string): [number, number, number, boolean] {
  const match = /^(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/.exec(version);
  assert.ok(match, `${version} is not a semantic version`);
  return [Number(match[1]), Number(match[2]), Number(match[3]), match[4] !== undefined];
}

function atLeast(version: string, minimum: string): boolean {
  const [a, b, c, pre] = parse(version);
  const [x, y, z] = parse(minimum);
  if (a !== x) return a > x;
  if (b !== y) return b > y;
  if (c !== z) return c > z;
  return !pre;
}

function json(file: string): any {
  return JSON.parse(readFileSync(path.join(ROOT, file), 'utf8'));
}

test('the version comparison', () => {
  assert.equal(atLeast('8.23.0', MINIMUM), true);
  assert.equal(atLeast('8.23.1', MINIMUM), true);
  assert.equal(atLeast('8.100.0', MINIMUM), true);
  assert.equal(atLeast('9.0.0', MINIMUM), true);
  assert.equal(atLeast('8.22.9', MINIMUM), false);
  assert.equal(atLeast('8.9.0', MINIMUM), false);
  assert.equal(atLeast('8.23.0-beta.1', MINIMUM), false);
  assert.equal(atLeast('7.5.10', MINIMUM), false);
});

test(`ws is ${MINIMUM} or later: installed, locked and required`, () => {
  const installed = json('node_modules/ws/package.json') as { name: string; version: string };
  assert.equal(installed.name, 'ws');
  assert.ok(atLeast(installed.version, MINIMUM), `node_modules/ws is ${installed.version}`);

  const lock = json('package-lock.json') as { packages: Record<string, { version?: string }> };
  const locked = Object.entries(lock.packages).filter(([where]) => where === 'node_modules/ws' || where.endsWith('/node_modules/ws'));
  assert.ok(locked.length >= 1, 'ws is in package-lock.json');
  for (const [where, entry] of locked) assert.ok(atLeast(entry.version ?? '0.0.0', MINIMUM), `${where} is locked at ${entry.version}`);

  // The range's floor: ^8.23.0, ~8.23.1, >=8.23.0 and the like.
  const range = (json('package.json') as { dependencies: Record<string, string> }).dependencies['ws'];
  assert.ok(range, 'ws is a direct dependency');
  const floor = /(\d+\.\d+\.\d+)/.exec(range)?.[1];
  assert.ok(floor && /^[\^~]|^>=/.test(range.trim()) && atLeast(floor, MINIMUM), `package.json allows ws ${range}`);
});
