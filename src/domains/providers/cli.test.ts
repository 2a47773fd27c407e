/**
 * `neuron provider …` and `neuron outbox …` as an operator runs them: a real process on a temporary
 * config, its exit codes, its JSON, and a change taking effect in a running Neuron at once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { startTestNeuron, type TestNeuron } from '../../../test/helpers/neuron.ts';
import { getActiveProvider } from './store.ts';
import { api } from '../../../test/helpers/providers.ts';
import { runNeuronCli, temporaryCliConfig, type CliConfig } from '../../../test/helpers/cli.ts';
import type { ProcessResult } from '../../../test/helpers/run-process.ts';

const NPI = '1679576722';
const SECOND = '1376841239';

const neuron = (configFile: string, ...args: string[]): Promise<ProcessResult> => runNeuronCli(configFile, args);

describe('neuron provider (CLI)', () => {
  let cli: CliConfig;
  let config: string;

  before(() => {
    cli = temporaryCliConfig('neuron-provider-cli-');
    config = cli.configFile;
  });
  after(() => cli.remove());

  test('add reports every problem at once and writes nothing; a provider without an endpoint is added with a note', async () => {
    const { configFile: freshConfig, dataDir: freshData, remove } = temporaryCliConfig('neuron-provider-cli-');
    try {
      const bad = await neuron(
        freshConfig,
        'provider',
        'add',
        '1679576723',
        '--name',
        'All wrong',
        '--types',
        'physician,wizard',
        '--endpoint',
        'ftp://x.example',
        '--status',
        'suspended',
      );
      assert.equal(bad.code, 2, bad.stderr);
      for (const flag of ['<npi>', '--types \\(item 1\\)', '--endpoint', '--status'])
        assert.match(bad.stderr, new RegExp(`- ${flag} `), `${flag} is reported: ${bad.stderr}`);
      assert.equal(existsSync(freshData), false, 'no database created for a refused provider');

      const bare = await neuron(freshConfig, 'provider', 'add', SECOND, '--name', 'No Endpoint');
      assert.equal(bare.code, 0, bare.stderr);
      assert.match(bare.stderr, /has no endpoint \(--endpoint\).*cannot be approved until it has one/);
      assert.doesNotMatch(bare.stdout, /Next: `neuron provider approve/);
    } finally {
      remove();
    }
  });

  test('add, list, approve, suspend and remove, with exit codes', async () => {
    const added = await neuron(
      config,
      'provider',
      'add',
      NPI,
      '--name',
      'Dr. CLI',
      '--types',
      'physician,laboratory',
      '--endpoint',
      'wss://cli.example/agent',
      '--json',
    );
    assert.equal(added.code, 0, added.stderr);
    assert.equal(JSON.parse(added.stdout).status, 'pending');

    const invalid: string[][] = [
      ['provider', 'add', '1679576723', '--name', 'Bad Luhn', '--endpoint', 'wss://x.example'],
      ['provider', 'add', SECOND, '--name', 'Bad type', '--types', 'wizard'],
      ['provider', 'add', SECOND, '--name', 'Bad endpoint', '--endpoint', 'ftp://x.example'],
      ['provider', 'add', SECOND, '--name', 'Not a URL', '--endpoint', 'somewhere'],
      ['provider', 'add', SECOND, '--endpoint', 'wss://x.example'],
      ['provider', 'update', NPI],
    ];
    for (const args of invalid) {
      const run = await neuron(config, ...args);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, /error/);
    }
    assert.equal(
      (await neuron(config, 'provider', 'add', NPI, '--name', 'Twice', '--endpoint', 'wss://x.example')).code,
      1,
      'already on the roster',
    );

    const listed = await neuron(config, 'provider', 'list', '--json');
    assert.equal(listed.code, 0);
    assert.deepEqual(
      JSON.parse(listed.stdout).map((p: { npi: string }) => p.npi),
      [NPI],
      'nothing else was written',
    );
    const human = await neuron(config, 'provider', 'list');
    assert.match(human.stdout, new RegExp(`${NPI}\\s+pending\\s+Dr\\. CLI`));

    const approved = await neuron(config, 'provider', 'approve', NPI, '--json');
    assert.equal(approved.code, 0, approved.stderr);
    const approval = JSON.parse(approved.stdout);
    assert.match(approval.credential, /^nprv_/);
    assert.equal(approval.provider.status, 'active');
    assert.match(approval.neuron_public_key, /^[A-Za-z0-9_-]{43}$/);
    const shown = await neuron(config, 'provider', 'show', NPI);
    assert.equal(shown.code, 0);
    assert.ok(!shown.stdout.includes(approval.credential), 'the credential is shown once only');
    assert.match(shown.stdout, /credential\s+issued/);

    const suspended = await neuron(config, 'provider', 'suspend', NPI, '--reason', 'review', '--json');
    assert.equal(suspended.code, 0);
    assert.equal(JSON.parse(suspended.stdout).status, 'suspended');

    assert.equal((await neuron(config, 'provider', 'remove', NPI)).code, 0);
    assert.equal((await neuron(config, 'provider', 'remove', NPI)).code, 1, 'no such provider');
    assert.equal((await neuron(config, 'provider', 'show', NPI)).code, 1);
    assert.deepEqual(JSON.parse((await neuron(config, 'provider', 'list', '--json')).stdout), []);
  });

  test('outbox list and retry', async () => {
    const listed = await neuron(config, 'outbox', 'list', '--json');
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout), []);
    assert.equal((await neuron(config, 'outbox', 'list', '--status', 'lost')).code, 2);
    assert.equal((await neuron(config, 'outbox', 'retry', 'no-such-event')).code, 1);
  });
});

describe('CLI changes reach a running Neuron at once', () => {
  let t: TestNeuron;
  before(async () => {
    t = await startTestNeuron({
      config: { providers: [{ npi: NPI, name: 'Dr. Running', provider_endpoint: 'wss://running.example/agent' }] },
    });
  });
  after(async () => t.stop());

  test('a suspension by the CLI is seen by the next lookup, and an approval issues a working credential', async () => {
    assert.notEqual(await getActiveProvider(t.neuron.storage.db, NPI), null);
    const suspended = await neuron(t.configFile, 'provider', 'suspend', NPI);
    assert.equal(suspended.code, 0, suspended.stderr);
    assert.equal(await getActiveProvider(t.neuron.storage.db, NPI), null);

    const approved = await neuron(t.configFile, 'provider', 'approve', NPI, '--json');
    assert.equal(approved.code, 0, approved.stderr);
    const { credential, registration_id: registrationId } = JSON.parse(approved.stdout);
    assert.notEqual(await getActiveProvider(t.neuron.storage.db, NPI), null);
    assert.match(registrationId, /^nreg_/, 'a seeded provider gets its registration id at approval');
    const beat = await api(t.url, 'GET', `/v1/providers/${registrationId}/heartbeat`, { token: credential });
    assert.equal(beat.status, 200);
    assert.equal(beat.body.status, 'connected');
    const shown = await neuron(t.configFile, 'provider', 'show', NPI);
    assert.match(shown.stdout, /agent\s+connected/);
    assert.ok(!shown.stdout.includes(registrationId), "show prints only the registration id's prefix");

    const disconnected = await api(t.url, 'POST', `/v1/providers/${registrationId}/disconnect`);
    assert.equal(disconnected.body.status, 'disconnected');
    assert.match((await neuron(t.configFile, 'provider', 'show', NPI)).stdout, /agent\s+disconnected/);

    // CLI changes are audited as the operator at the console, with no API key.
    for (const type of ['provider.suspended', 'provider.approved']) {
      const entries = await t.neuron.storage.db
        .selectFrom('audit_log')
        .select(['actor', 'details'])
        .where('event_type', '=', type)
        .execute();
      assert.ok(
        entries.some((e) => e.actor === 'cli' && JSON.parse(e.details).key_id === null),
        type,
      );
    }
  });
});
