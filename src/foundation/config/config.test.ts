import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, redactConfig } from './load.ts';
import { secretPaths } from './schema.ts';
import { isValidNpi } from './npi.ts';

function tempDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'neuron-config-'));
}

function writeConfig(dir: string, value: unknown): string {
  const file = path.join(dir, 'neuron.config.json');
  writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value));
  return file;
}

function problemsOf(action: () => unknown): Array<{ path: string; message: string; source?: string }> {
  try {
    action();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return error.problems;
  }
  assert.fail('expected the configuration to be refused');
}

test('NPI check accepts the published synthetic NPIs and rejects a wrong check digit', () => {
  for (const npi of ['1245319599', '1679576722', '1376841239', '1003000126', '1234567893', '1649218926', '1982743191']) {
    assert.equal(isValidNpi(npi), true, npi);
  }
  for (const bad of ['1245319590', '1234567890', '123456789', '12345678901', 'abcdefghij', '', 1245319599]) {
    assert.equal(isValidNpi(bad), false, String(bad));
  }
});

test('defaults apply when there is no file, env or flag', () => {
  const { config, paths } = loadConfig({ cwd: tempDir(), env: {} });
  assert.equal(config.handshake.max_concurrent_handshakes, 10);
  assert.equal(config.handshake.max_queued, 10_000);
  assert.equal(config.handshake.auth_timeout_ms, 10_000);
  assert.equal(config.storage.sqlite_synchronous, 'FULL');
  assert.equal(paths.configFile, null);
  assert.ok(paths.sqliteFile.endsWith(path.join('data', 'neuron.sqlite')));
});

test('layers: defaults < file < NEURON_* env < overrides', () => {
  const dir = tempDir();
  const file = writeConfig(dir, { server: { port: 1111, host: '127.0.0.1' }, handshake: { max_queued: 5 }, data_dir: 'state' });
  const fromFile = loadConfig({ configFile: file, env: {} });
  assert.equal(fromFile.config.server.port, 1111);
  assert.equal(fromFile.config.handshake.max_queued, 5);
  assert.equal(fromFile.paths.dataDir, path.join(dir, 'state'), 'data_dir is relative to the config file');

  const fromEnv = loadConfig({
    configFile: file,
    env: {
      NEURON_SERVER__PORT: '2222',
      NEURON_API__CORS_ORIGINS: 'https://a.example,https://b.example',
      NEURON_DISCOVERY__ENABLED: 'false',
    },
  });
  assert.equal(fromEnv.config.server.port, 2222);
  assert.deepEqual(fromEnv.config.api.cors_origins, ['https://a.example', 'https://b.example']);
  assert.equal(fromEnv.config.discovery.enabled, false);
  assert.equal(fromEnv.config.handshake.max_queued, 5, 'file values survive env overrides of other keys');

  const fromFlags = loadConfig({
    configFile: file,
    env: { NEURON_SERVER__PORT: '2222' },
    overrides: { 'server.port': '3333', 'handshake.max_queued': 7 },
  });
  assert.equal(fromFlags.config.server.port, 3333);
  assert.equal(fromFlags.config.handshake.max_queued, 7);
});

test('every problem is reported at once, each with its path', () => {
  const dir = tempDir();
  const file = writeConfig(dir, {
    organization: { npi: '1234567890' },
    server: { port: 'eighty', colour: 'blue' },
    handshake: { max_concurrent_handshakes: 0 },
    providers: [{ npi: '1679576720', name: 'Dr. Test', provider_endpoint: 'not a url' }],
  });
  const problems = problemsOf(() => loadConfig({ configFile: file, env: { NEURON_NOT_AN_OPTION: '1' } }));
  const paths = problems.map((p) => p.path);
  assert.ok(paths.includes('server.port'), paths.join());
  assert.ok(paths.includes('server.colour'), 'unknown key named');
  assert.ok(paths.includes('handshake.max_concurrent_handshakes'));
  assert.ok(paths.includes('not_an_option'), 'unknown environment option named');
  // Semantic checks run once the shape is valid; fix the shape and the NPI problems appear together.
  const semantic = problemsOf(() =>
    loadConfig({
      configFile: writeConfig(dir, {
        organization: { npi: '1234567890' },
        providers: [{ npi: '1679576720', name: 'Dr. Test', provider_endpoint: 'not a url' }],
      }),
      env: {},
    }),
  ).map((p) => p.path);
  assert.deepEqual(semantic.sort(), ['organization.npi', 'providers.0.npi', 'providers.0.provider_endpoint'].sort());
});

test('names shown to people refuse bidirectional controls: the organization and seeded providers', () => {
  const file = writeConfig(tempDir(), {
    organization: { name: 'Test \u202EecitcarP' },
    providers: [{ npi: '1679576722', name: 'Dr. \u2066Test\u2069', provider_endpoint: 'wss://a.example/agent' }],
  });
  const paths = problemsOf(() => loadConfig({ configFile: file, env: {} })).map((p) => p.path);
  assert.ok(paths.includes('organization.name'), paths.join());
  assert.ok(paths.includes('providers.0.name'), paths.join());
});

test('a malformed file names the file and the fix', () => {
  const file = writeConfig(tempDir(), '{ "server": { "port": 80, } ');
  const [problem] = problemsOf(() => loadConfig({ configFile: file, env: {} }));
  assert.match(problem!.message, /not valid JSON/);
  assert.match(problem!.message, /neuron init --force/);
});

test('an explicit config file that does not exist is an error, not silent defaults', () => {
  const problems = problemsOf(() => loadConfig({ configFile: path.join(tempDir(), 'missing.json'), env: {} }));
  assert.match(problems[0]!.message, /does not exist/);
});

test('pairs of options are checked together', () => {
  const file = writeConfig(tempDir(), {
    server: { tls: { cert_file: 'cert.pem' } },
    registry: { enabled: true },
    storage: { url: 'mysql://x' },
  });
  const paths = problemsOf(() => loadConfig({ configFile: file, env: {} })).map((p) => p.path);
  assert.ok(paths.includes('server.tls'));
  assert.ok(paths.includes('registry.url'));
  assert.ok(paths.includes('storage.url'));
});

test('server.trusted_proxies entries that cannot be compiled are config problems, each named', () => {
  const file = writeConfig(tempDir(), {
    server: { trusted_proxies: ['10.0.0.0/8', '10.0.0.0/99', '2001:db8::/129', 'loopback', '192.0.2.300'] },
  });
  const problems = problemsOf(() => loadConfig({ configFile: file, env: {} }));
  assert.deepEqual(problems.map((p) => p.path).sort(), [
    'server.trusted_proxies.1',
    'server.trusted_proxies.2',
    'server.trusted_proxies.4',
  ]);
  assert.ok(problems.every((p) => p.message.length > 0));
  // Valid entries load.
  const good = loadConfig({
    configFile: writeConfig(tempDir(), { server: { trusted_proxies: ['10.0.0.0/8', '::1', 'loopback'] } }),
    env: {},
  });
  assert.deepEqual(good.config.server.trusted_proxies, ['10.0.0.0/8', '::1', 'loopback']);
});

test('redaction hides every secret and nothing else', () => {
  assert.ok(secretPaths().includes('storage.url'));
  const { config } = loadConfig({ cwd: tempDir(), env: { NEURON_STORAGE__URL: 'postgres://neuron:hunter2@db.internal/neuron' } });
  const printed = JSON.stringify(redactConfig(config));
  assert.ok(!printed.includes('hunter2'));
  assert.ok(printed.includes('[redacted]'));
  assert.ok(printed.includes('"max_queued":10000'));
  assert.equal(config.storage.url, 'postgres://neuron:hunter2@db.internal/neuron', 'redaction works on a copy');
});

test('NEURON_TEST_* variables belong to the test tooling and are not options', () => {
  const { config } = loadConfig({
    cwd: tempDir(),
    env: { NEURON_TEST_POSTGRES_URL: 'postgres://x@127.0.0.1/y', NEURON_SERVER__PORT: '4444' },
  });
  assert.equal(config.server.port, 4444);
});

test('every problem names where its value came from: the file, an environment variable or a flag', () => {
  const dir = tempDir();
  const file = writeConfig(dir, { server: { host: 7 } });
  const problems = problemsOf(() =>
    loadConfig({
      cwd: dir,
      env: { NEURON_HANDSHAKE__MAX_QUEUED: 'many' },
      overrides: { 'server.port': 'abc' },
      overrideSources: { 'server.port': 'flag --port' },
    }),
  );
  const sourceAt = (at: string): string | undefined => problems.find((p) => p.path === at)?.source;
  assert.equal(sourceAt('server.port'), 'flag --port');
  assert.equal(sourceAt('handshake.max_queued'), 'environment variable NEURON_HANDSHAKE__MAX_QUEUED');
  assert.equal(sourceAt('server.host'), file);
  writeConfig(dir, { server: { host: '127.0.0.1' } });
  assert.throws(
    () => loadConfig({ cwd: dir, env: {}, overrides: { 'server.port': 'abc' }, overrideSources: { 'server.port': 'flag --port' } }),
    (error: Error) => {
      assert.match(error.message, /server\.port: .*\(from flag --port\)/);
      assert.match(error.message, /^invalid configuration \(flag --port\):/, 'the file is not blamed for a flag');
      return true;
    },
  );
});
