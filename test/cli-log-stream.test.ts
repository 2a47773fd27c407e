/**
 * `neuron start` as a real process: stdout is the JSON log stream and holds nothing else (the
 * start banner goes to stderr), request lines there carry no query values, and pretty logs have
 * no colour when NO_COLOR is set.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const BIN = path.resolve(import.meta.dirname, '..', 'bin', 'neuron.js');
/** Generous: a cold start compiles TypeScript through tsx and migrates a new database. */
const START_DEADLINE_MS = 30_000;

interface Run {
  stdout: string;
  stderr: string;
  url: string;
}

/** Starts `neuron start` in a fresh directory, calls `during(url)`, stops it with SIGTERM and returns what it printed. */
async function startAndStop(env: Record<string, string>, during: (url: string, stdout: () => string) => Promise<void>): Promise<Run> {
  const cwd = mkdtempSync(path.join(tmpdir(), 'neuron-logstream-'));
  const child = spawn(process.execPath, [BIN, 'start', '--port', '0'], { cwd, env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const pidFile = path.join(cwd, 'data', 'neuron.pid');
    const deadline = Date.now() + START_DEADLINE_MS;
    while (!existsSync(pidFile) && Date.now() < deadline) await sleep(50);
    assert.ok(existsSync(pidFile), `did not start: ${stderr}`);
    const { url } = JSON.parse(readFileSync(pidFile, 'utf8')) as { url: string };
    await during(url, () => stdout);
    child.kill('SIGTERM');
    await exited;
    return { stdout, stderr, url };
  } finally {
    child.kill('SIGKILL');
    rmSync(cwd, { recursive: true, force: true });
  }
}

test('stdout carries JSON log lines only; the banner is on stderr; request lines have query keys, not values', async () => {
  const run = await startAndStop({ NO_COLOR: '1', NEURON_LOGGING__PRETTY: 'never' }, async (url) => {
    await fetch(`${url}/health/live?search=Jane%20Syntheticperson&api_key=nrn_x_synthetic`, { headers: { 'x-request-id': 'cli-check-1' } });
  });
  const lines = run.stdout.split('\n').filter(Boolean);
  assert.ok(lines.length > 0);
  for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `not a JSON log line on stdout: ${line}`);
  assert.match(run.stderr, /Neuron running for/);
  assert.match(run.stderr, /created a development config/);
  assert.ok(!run.stdout.includes('Syntheticperson') && !run.stdout.includes('nrn_x_synthetic'));
  const request = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line['request_id'] === 'cli-check-1');
  assert.deepEqual(
    { route: request?.['route'], query_keys: request?.['query_keys'], status: request?.['status'] },
    { route: '/health/live', query_keys: ['search', 'api_key'], status: 400 },
    'the health routes take no query (400), and the line still names the keys only',
  );
});

test('pretty logs have no colour when NO_COLOR is set', async () => {
  const run = await startAndStop({ NO_COLOR: '1', NEURON_LOGGING__PRETTY: 'always' }, async (_url, stdout) => {
    // Pretty lines are written by pino's transport thread, which may lag the PID file on a busy machine.
    const deadline = Date.now() + START_DEADLINE_MS;
    while (!/neuron started/.test(stdout()) && Date.now() < deadline) await sleep(50);
  });
  assert.match(run.stdout, /neuron started/);
  assert.ok(!run.stdout.includes('\u001b['), 'ANSI colour codes in the pretty log');
});
