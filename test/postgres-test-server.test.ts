/**
 * scripts/postgres-test-server.sh takes its settings from the environment. The Neuron reads every
 * NEURON_* variable (but NEURON_CONFIG and NEURON_TEST_*) as configuration and refuses one it does
 * not know, so a script setting in that namespace, once exported, broke every Neuron started in
 * the same shell (`pg_port: unknown option`). The script's own variables stay outside it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/foundation/config/index.ts';

const SCRIPT = readFileSync(path.resolve(import.meta.dirname, '..', 'scripts', 'postgres-test-server.sh'), 'utf8');

test("the PostgreSQL test server script reads no variable in the Neuron's configuration namespace", () => {
  const read = [...SCRIPT.matchAll(/\$\{?(NEURON_\w+)/g)].map((match) => match[1]);
  assert.deepEqual(read, [], 'the script must not read NEURON_* variables');
  assert.match(SCRIPT, /\$\{PG_TEST_DIR:-/);
  assert.match(SCRIPT, /\$\{PG_TEST_PORT:-/);
});

test("the script's settings, exported beside a Neuron, are not taken for configuration", () => {
  const { config } = loadConfig({
    cwd: mkdtempSync(path.join(tmpdir(), 'neuron-pgscript-')),
    env: { PG_TEST_DIR: '/tmp/elsewhere', PG_TEST_PORT: '54400' },
  });
  assert.equal(config.server.port, 8600);
});
