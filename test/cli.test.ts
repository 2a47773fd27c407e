/**
 * The `neuron` command as an operator uses it: real processes, a real data directory, real
 * signals. Each test works in its own temporary directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isAlive } from '../src/cli/pidfile.ts';
import { waitFor } from './helpers/wait.ts';

const BIN = path.resolve(import.meta.dirname, '..', 'bin', 'neuron.js');
/** Generous: a cold start compiles TypeScript through tsx and migrates a new database. */
const START_DEADLINE_MS = 20_000;

function tempDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'neuron-cli-'));
}

function run(cwd: string, args: string[], env: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    env: { ...process.env, NO_COLOR: '1', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function startForeground(cwd: string, args: string[] = []): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, [BIN, 'start', '--port', '0', ...args], {
    cwd,
    env: { ...process.env, NO_COLOR: '1', NEURON_LOGGING__PRETTY: 'never' },
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return { child, output: () => output };
}

function exited(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null ? Promise.resolve(child.exitCode) : new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

test('start with no config creates a development setup, serves health, and stop shuts it down cleanly', async () => {
  const cwd = tempDir();
  const { child, output } = startForeground(cwd);
  try {
    const pidFile = path.join(cwd, 'data', 'neuron.pid');
    await waitFor('the PID file', () => existsSync(pidFile), START_DEADLINE_MS);
    assert.match(output(), /created a development config at/);
    // No operator yet: the banner says how to create the first one and where to sign in.
    await waitFor(
      'the console banner',
      () => /No console operator yet: create one with `npm run neuron -- operator add NAME --role admin`.*\/console/.test(output()),
      START_DEADLINE_MS,
    );
    assert.ok(existsSync(path.join(cwd, 'neuron.config.json')));
    assert.ok(existsSync(path.join(cwd, 'data', 'neuron.sqlite')));
    const { url } = JSON.parse(readFileSync(pidFile, 'utf8')) as { url: string };
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);

    const live = await fetch(`${url}/health/live`);
    assert.equal(live.status, 200);
    const ready = await fetch(`${url}/health/ready`);
    assert.deepEqual(await ready.json(), { status: 'ok' });

    const status = run(cwd, ['status', '--json']);
    assert.equal(status.code, 0, status.stderr);
    const parsed = JSON.parse(status.stdout) as { running: boolean; ready: boolean; pid: number; counts: { audit_entries: number } };
    assert.equal(parsed.running, true);
    assert.equal(parsed.ready, true);
    assert.equal(parsed.pid, child.pid);
    assert.ok(parsed.counts.audit_entries >= 1);

    const stop = run(cwd, ['stop']);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(await exited(child), 0);
    assert.equal(existsSync(pidFile), false, 'PID file removed on a clean stop');

    const after = run(cwd, ['status']);
    assert.equal(after.code, 3, 'status exits 3 when not running');
    assert.match(after.stdout, /not running/);

    const verify = run(cwd, ['audit', 'verify', '--json']);
    assert.equal(verify.code, 0, verify.stderr);
    const result = JSON.parse(verify.stdout) as {
      ok: boolean;
      checkpoints: number;
      entries: number;
      tree_heads: number;
      first_bad_seq: null;
    };
    assert.equal(result.ok, true);
    assert.ok(result.tree_heads >= 2, 'every commit that appended was sealed under a signed tree head');
    assert.equal(result.first_bad_seq, null);
    assert.ok(result.checkpoints >= 1, 'a checkpoint is signed at shutdown');
    assert.ok(result.entries >= 2, 'start and stop are audited');
  } finally {
    child.kill('SIGKILL');
  }
});

test('start --daemon runs in the background until stop', async () => {
  const cwd = tempDir();
  assert.equal(run(cwd, ['init', '--yes']).code, 0);
  const started = run(cwd, ['start', '--daemon', '--port', '0']);
  assert.equal(started.code, 0, started.stderr);
  assert.match(started.stdout, /started in the background \(pid (\d+)\)/);
  const pid = Number(/pid (\d+)/.exec(started.stdout)![1]);
  const again = run(cwd, ['start', '--port', '0']);
  assert.equal(again.code, 1, 'a second instance on the same data directory is refused');
  assert.match(again.stderr, /already running/);
  const stop = run(cwd, ['stop']);
  assert.equal(stop.code, 0, stop.stderr);
  // The daemon's parent has exited, so the daemon may linger as a zombie until init collects it.
  assert.equal(isAlive(pid), false, 'the daemon has exited');
  assert.match(readFileSync(path.join(cwd, 'data', 'neuron.log'), 'utf8'), /neuron stopped/);
});

test('stop and status say so when nothing runs', () => {
  const cwd = tempDir();
  assert.equal(run(cwd, ['init', '--yes']).code, 0);
  const stop = run(cwd, ['stop']);
  assert.equal(stop.code, 3);
  assert.match(stop.stderr, /no Neuron is running/);
});

test('init writes a config, a database and an organization key, and refuses to overwrite', () => {
  const cwd = tempDir();
  const init = run(cwd, ['init', '--yes', '--name', 'Test Clinic', '--npi', '1679576722', '--type', 'clinic']);
  assert.equal(init.code, 0, init.stderr);
  assert.match(init.stdout, /public key\s+[A-Za-z0-9_-]{43}/);
  const config = JSON.parse(readFileSync(path.join(cwd, 'neuron.config.json'), 'utf8')) as {
    organization: { name: string; npi: string; type: string };
  };
  assert.deepEqual(config.organization, { name: 'Test Clinic', npi: '1679576722', type: 'clinic' });
  assert.ok(existsSync(path.join(cwd, 'data', 'neuron.sqlite')));

  const again = run(cwd, ['init', '--yes']);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /already exists; pass --force/);
});

test('init refuses a bad NPI and writes nothing', () => {
  const cwd = tempDir();
  const init = run(cwd, ['init', '--yes', '--npi', '1234567890']);
  assert.equal(init.code, 2);
  assert.match(init.stderr, /not a valid NPI/);
  assert.equal(existsSync(path.join(cwd, 'neuron.config.json')), false);
  assert.equal(existsSync(path.join(cwd, 'data')), false);
});

test('init --force with any invalid answer exits 2 and leaves the existing config as it was', () => {
  const cwd = tempDir();
  assert.equal(run(cwd, ['init', '--yes', '--name', 'Test Clinic', '--npi', '1679576722']).code, 0);
  const configFile = path.join(cwd, 'neuron.config.json');
  const before = readFileSync(configFile, 'utf8');
  for (const bad of [
    ['--public-url', 'ftp://x'],
    ['--npi', '1234567890'],
    ['--registry-url', 'not a url'],
  ]) {
    const init = run(cwd, ['init', '--yes', '--force', '--name', 'Other Clinic', ...bad]);
    assert.equal(init.code, 2, `${bad.join(' ')}: ${init.stderr}`);
    assert.match(init.stderr, new RegExp(`nothing was written or removed[\\s\\S]*\\(${bad[0]}\\)`));
    assert.equal(readFileSync(configFile, 'utf8'), before, `${bad.join(' ')} left the config untouched`);
  }
  const port = run(cwd, ['--port', 'abc', 'init', '--yes', '--force']);
  assert.equal(port.code, 2);
  assert.match(port.stderr, /server\.port: .*\(--port\)/);
  assert.equal(readFileSync(configFile, 'utf8'), before);
  assert.deepEqual(readdirSync(cwd).sort(), ['data', 'neuron.config.json'], 'no candidate file left behind');
});

test('init without --name says the organization got synthetic development values', () => {
  const cwd = tempDir();
  const init = run(cwd, ['init', '--yes']);
  assert.equal(init.code, 0, init.stderr);
  assert.match(
    init.stderr,
    /no --name and no --npi given, so the organization has synthetic development values \(name "Development Practice", NPI 1245319599\)/,
  );
  const named = run(tempDir(), ['init', '--yes', '--name', 'Test Clinic']);
  assert.match(named.stderr, /no --npi given/);
  assert.doesNotMatch(named.stderr, /--name/);
});

test('config --print shows the effective config with secrets redacted', () => {
  const cwd = tempDir();
  const printed = run(cwd, ['config', '--print', '--set', 'handshake.max_queued=123'], {
    NEURON_STORAGE__URL: 'postgres://neuron:hunter2@db.internal/neuron',
  });
  assert.equal(printed.code, 0, printed.stderr);
  assert.ok(!printed.stdout.includes('hunter2'));
  const config = JSON.parse(printed.stdout) as { storage: { url: string }; handshake: { max_queued: number } };
  assert.equal(config.storage.url, '[redacted]');
  assert.equal(config.handshake.max_queued, 123);
});

test('--set before a subcommand takes one path=value and leaves the subcommand alone; it repeats', () => {
  const cwd = tempDir();
  const status = run(cwd, ['--set', 'handshake.max_queued=500', 'status']);
  assert.equal(status.code, 3, status.stderr);
  assert.match(status.stdout, /not running/);
  const printed = run(cwd, ['--set', 'handshake.max_queued=123', '--set', 'handshake.max_concurrent_handshakes=7', 'config', '--print']);
  assert.equal(printed.code, 0, printed.stderr);
  const config = JSON.parse(printed.stdout) as { handshake: { max_queued: number; max_concurrent_handshakes: number } };
  assert.equal(config.handshake.max_queued, 123);
  assert.equal(config.handshake.max_concurrent_handshakes, 7);
});

test('a bad --port is blamed on the flag, not on the config file', () => {
  const cwd = tempDir();
  assert.equal(run(cwd, ['init', '--yes', '--name', 'Test Clinic']).code, 0);
  const status = run(cwd, ['--port', 'abc', 'status']);
  assert.equal(status.code, 2);
  assert.match(status.stderr, /server\.port: .*\(from flag --port\)/);
  assert.doesNotMatch(status.stderr, /neuron\.config\.json/);
});

test('bad configuration: every problem listed, exit 2, nothing created', () => {
  const cwd = tempDir();
  writeFileSync(
    path.join(cwd, 'neuron.config.json'),
    JSON.stringify({ organization: { npi: '1234567890' }, server: { port: 70000, colour: 'blue' } }),
  );
  const start = run(cwd, ['start']);
  assert.equal(start.code, 2);
  assert.match(start.stderr, /server\.port/);
  assert.match(start.stderr, /server\.colour: unknown option/);
  assert.equal(existsSync(path.join(cwd, 'data')), false, 'no data directory for a refused config');

  writeFileSync(path.join(cwd, 'neuron.config.json'), '{ "server": ');
  const malformed = run(cwd, ['start']);
  assert.equal(malformed.code, 2);
  assert.match(malformed.stderr, /not valid JSON/);

  writeFileSync(path.join(cwd, 'neuron.config.json'), JSON.stringify({ organization: { npi: '1234567890' } }));
  const npi = run(cwd, ['start']);
  assert.equal(npi.code, 2);
  assert.match(npi.stderr, /organization\.npi: not a valid NPI/);
});

test('a port in use is one clear message and exit 1', async () => {
  const cwd = tempDir();
  assert.equal(run(cwd, ['init', '--yes']).code, 0);
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  try {
    const port = (blocker.address() as { port: number }).port;
    const start = run(cwd, ['start', '--port', String(port)]);
    assert.equal(start.code, 1);
    assert.match(start.stderr, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use`));
    assert.equal(existsSync(path.join(cwd, 'data', 'neuron.pid')), false);
  } finally {
    blocker.close();
  }
});

test('an unusable data directory and a corrupted database are refused with the fix', () => {
  const cwd = tempDir();
  writeFileSync(path.join(cwd, 'not-a-directory'), 'x');
  const unwritable = run(cwd, ['start', '--data-dir', 'not-a-directory/data']);
  assert.equal(unwritable.code, 1);
  assert.match(unwritable.stderr, /data directory .* is not writable/);

  const corrupt = tempDir();
  assert.equal(run(corrupt, ['init', '--yes']).code, 0);
  writeFileSync(path.join(corrupt, 'data', 'neuron.sqlite'), 'this is not a database, just synthetic junk '.repeat(200));
  const start = run(corrupt, ['start', '--port', '0']);
  assert.equal(start.code, 1);
  assert.match(start.stderr, /STORAGE_CORRUPT: the database .* is damaged .*restore the database from a backup/);
});

test('audit verify exits 1 and names the first bad entry after tampering', async () => {
  const cwd = tempDir();
  assert.equal(run(cwd, ['init', '--yes']).code, 0);
  const { child } = startForeground(cwd);
  await waitFor('the PID file', () => existsSync(path.join(cwd, 'data', 'neuron.pid')), START_DEADLINE_MS);
  assert.equal(run(cwd, ['stop']).code, 0);
  await exited(child);
  // A witness keeps the tree head `audit tree-head` prints; it verifies against the clean log.
  const head = run(cwd, ['audit', 'tree-head']);
  assert.equal(head.code, 0, head.stderr);
  const witnessFile = path.join(cwd, 'witness.json');
  writeFileSync(witnessFile, head.stdout);
  assert.equal(run(cwd, ['audit', 'verify', '--tree-head', witnessFile]).code, 0);

  const { default: Database } = await import('better-sqlite3');
  const db = new Database(path.join(cwd, 'data', 'neuron.sqlite'));
  db.prepare("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2").run();
  db.close();
  const verify = run(cwd, ['audit', 'verify']);
  assert.equal(verify.code, 1);
  assert.match(verify.stdout, /FAILED at sequence 2/);
  const json = run(cwd, ['audit', 'verify', '--json', '--tree-head', witnessFile]);
  assert.equal(json.code, 1);
  assert.deepEqual(
    Object.keys(JSON.parse(json.stdout) as object).sort(),
    ['bad_tree_head', 'checkpoints', 'entries', 'first_bad_seq', 'ok', 'problem', 'tree_heads'],
    'snake_case like every other JSON output',
  );
  assert.equal((JSON.parse(json.stdout) as { first_bad_seq: number }).first_bad_seq, 2);
});

test('key rotate: a new active key, the rotation in the log, and audit verify still passes from the pinned genesis key', () => {
  const cwd = tempDir();
  assert.equal(run(cwd, ['init', '--yes']).code, 0);
  const pinFile = path.join(cwd, 'data', 'organization-key.json');
  const genesis = (JSON.parse(readFileSync(pinFile, 'utf8')) as { public_key: string }).public_key;
  const first = run(cwd, ['key', 'rotate', '--json']);
  assert.equal(first.code, 0, first.stderr);
  const rotated = JSON.parse(first.stdout) as { seq: number; old_key: { public_key: string }; new_key: { public_key: string } };
  assert.equal(rotated.old_key.public_key, genesis);
  assert.notEqual(rotated.new_key.public_key, genesis);
  const second = run(cwd, ['key', 'rotate']);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /organization key rotated/);

  const head = JSON.parse(run(cwd, ['audit', 'tree-head']).stdout) as { key: { public_key: string } };
  assert.notEqual(head.key.public_key, rotated.new_key.public_key, 'the second rotation signed with the third key');
  assert.equal((JSON.parse(readFileSync(pinFile, 'utf8')) as { public_key: string }).public_key, genesis, 'the pin stays');
  const verify = run(cwd, ['audit', 'verify']);
  assert.equal(verify.code, 0, verify.stdout);
  assert.match(verify.stdout, /audit log intact/);
});
