/**
 * The registry wired into a real Neuron (createNeuron over a temporary config and SQLite file)
 * against the fake Axon registry on 127.0.0.1: first boot with the registry down, recovery, 401,
 * provider reconciliation, restart, and the operator's view through the real `neuron` command.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { startFakeRegistry, type FakeRegistry } from '../fakes/fake-registry.ts';
import { ApiKeyService } from '../../src/domains/api-keys/service.ts';
import { AxonClient } from '../../src/network/registry/index.ts';
import { createConsentToken, establishRelationship, generatePatientKeys } from 'neuron-careagent-client';
import {
  DR_ONE,
  DR_PENDING,
  DR_SUSPENDED,
  DR_TWO,
  HEARTBEATS,
  NEURON_POSTS,
  ORG_NPI,
  PROVIDER_POSTS,
  auditTypes,
  cli,
  count,
  insertProvider,
  providerDeletes,
  rosterRegistryState,
  startNeuron,
  type Harness,
} from './harness.ts';
import { waitFor } from '../helpers/wait.ts';

describe('registry presence of a running Neuron', () => {
  let fake: FakeRegistry;
  let harnesses: Harness[];

  beforeEach(async () => {
    fake = await startFakeRegistry();
    harnesses = [];
  });
  afterEach(async () => {
    await Promise.all(harnesses.map((h) => h.cleanup()));
    await fake.close();
  });

  async function start(extra: Record<string, unknown> = {}): Promise<Harness> {
    const h = await startNeuron(fake, extra);
    harnesses.push(h);
    return h;
  }

  /** Every secret the fake issued is absent from logs, audit, status views and the data directory's text files. */
  async function assertTokenNowhere(h: Harness, extraText = ''): Promise<void> {
    const tokens = [...fake.neurons.values()].map((neuron) => neuron.bearerToken);
    assert.ok(tokens.length > 0);
    const audit = await h.neuron.storage.db.selectFrom('audit_log').select('details').execute();
    const text = [
      h.logs.join('\n'),
      JSON.stringify(audit),
      JSON.stringify(await h.neuron.presence.registryStatus()),
      JSON.stringify(h.neuron.presence.registrySummary()),
      extraText,
    ].join('\n');
    for (const token of tokens) assert.ok(!text.includes(token), 'the bearer token leaked');
    // Nothing besides the database holds it: no JSON state file on disk.
    for (const name of readdirSync(h.dir)) {
      const file = path.join(h.dir, name);
      if (statSync(file).isFile() && name.endsWith('.json'))
        for (const token of tokens) assert.ok(!readFileSync(file, 'utf8').includes(token), `${name} holds the token`);
    }
  }

  it('first boot with the registry down: serves patients, retries, then registers with the full handshake URL and lists active providers', async () => {
    fake.setFault('down');
    const h = await start();
    const neuron = h.neuron;
    await insertProvider(neuron, DR_ONE);
    await insertProvider(neuron, DR_TWO, 'active', ['nursing']);
    await insertProvider(neuron, DR_PENDING, 'pending');
    await insertProvider(neuron, DR_SUSPENDED, 'suspended');
    neuron.presence.providersChanged();

    await waitFor('failed registration attempts', async () => (await neuron.presence.registryStatus()).consecutive_failures >= 2);
    const down = await neuron.presence.registryStatus();
    assert.equal(down.state, 'registering');
    assert.equal(down.registration_id, null);
    assert.match(down.last_error ?? '', /register_neuron unreachable/);
    assert.equal(neuron.presence.registrySummary().state, 'registering');
    const ready = await fetch(`${neuron.address().url}/health/ready`);
    assert.equal(ready.status, 200, 'the Neuron is ready while the registry is down');
    assert.equal((await rosterRegistryState(neuron, DR_ONE))?.state, 'pending');

    fake.setFault('none');
    await waitFor('registration', async () => (await neuron.presence.registryStatus()).state === 'registered');
    await waitFor('both active providers registered', () => fake.providers.has(DR_ONE) && fake.providers.has(DR_TWO));
    await waitFor('roster registry states', async () => (await rosterRegistryState(neuron, DR_TWO))?.state === 'registered');

    const [entry] = [...fake.neurons.values()];
    assert.ok(entry);
    assert.equal(fake.neurons.size, 1);
    assert.equal(count(fake, 'POST', NEURON_POSTS), 1);
    assert.equal(entry.organizationNpi, ORG_NPI);
    assert.equal(entry.organizationName, 'Synthetic Family Practice');
    assert.equal(entry.organizationType, 'practice');
    assert.equal(entry.endpointUrl, neuron.address().handshakeUrl);
    assert.match(entry.endpointUrl ?? '', /^ws:\/\/127\.0\.0\.1:\d+\/ws\/handshake$/);
    assert.deepEqual(fake.providers.get(DR_TWO)?.types, ['nursing']);
    assert.equal(fake.providers.get(DR_ONE)?.specialty, 'family medicine');
    assert.deepEqual(fake.providers.get(DR_ONE)?.credentials, [
      { type: 'license', issuer: 'Synthetic Board', identifier: 'L-6722', status: 'active' },
    ]);
    assert.ok(!fake.providers.has(DR_PENDING), 'a provider awaiting approval is not listed');
    assert.ok(!fake.providers.has(DR_SUSPENDED), 'a suspended provider is not listed');
    assert.equal((await rosterRegistryState(neuron, DR_PENDING))?.state, 'unregistered');
    await waitFor('a heartbeat', async () => (await neuron.presence.registryStatus()).last_heartbeat_at !== null);

    const status = await neuron.presence.registryStatus();
    assert.equal(status.registration_id, entry.registrationId);
    assert.equal(status.consecutive_failures, 0);
    assert.equal(status.client_running, true);
    assert.ok(h.logs.some((line) => line.includes('this instance now runs the registry client')));
    assert.equal((await auditTypes(neuron, 'registry.registered')).length, 1);
    assert.equal((await auditTypes(neuron, 'registry.provider_registered')).length, 2);
    await assertTokenNowhere(h);
  });

  it('recovers on its own after an outage during heartbeats', async () => {
    const h = await start();
    const neuron = h.neuron;
    await waitFor('a heartbeat', async () => (await neuron.presence.registryStatus()).last_heartbeat_at !== null);
    fake.setFault('down');
    await waitFor('failures counted', async () => (await neuron.presence.registryStatus()).consecutive_failures >= 3);
    const during = await neuron.presence.registryStatus();
    assert.equal(during.state, 'registered', 'an outage is not a fault of the registration');
    assert.match(during.last_error ?? '', /heartbeat unreachable/);
    const lastBefore = during.last_heartbeat_at;
    fake.setFault('none');
    await waitFor('recovered', async () => {
      const now = await neuron.presence.registryStatus();
      return now.consecutive_failures === 0 && now.last_heartbeat_at !== lastBefore;
    });
    assert.equal(count(fake, 'POST', NEURON_POSTS), 1);
    assert.ok(h.logs.some((line) => line.includes('registry reachable again')));
  });

  it('keeps the registry provider list in step with the roster: idempotent, suspension, removal, changes from other processes', async () => {
    const h = await start();
    const neuron = h.neuron;
    await insertProvider(neuron, DR_ONE);
    await insertProvider(neuron, DR_TWO);
    // No nudge: as if the CLI or another instance had changed the roster; the heartbeat reconciles.
    await waitFor(
      'providers registered',
      async () =>
        (await rosterRegistryState(neuron, DR_TWO))?.state === 'registered' &&
        (await rosterRegistryState(neuron, DR_ONE))?.state === 'registered',
    );
    const heartbeatsThen = count(fake, 'PUT', HEARTBEATS);
    await waitFor('several more heartbeats', () => count(fake, 'PUT', HEARTBEATS) >= heartbeatsThen + 4);
    assert.equal(count(fake, 'POST', PROVIDER_POSTS), 2, 'each provider is registered once, not at every heartbeat');

    // Suspension: removed from the registry.
    await neuron.storage.db.updateTable('providers').set({ status: 'suspended' }).where('npi', '=', DR_TWO).execute();
    neuron.presence.providersChanged();
    await waitFor('suspended provider removed', async () => (await rosterRegistryState(neuron, DR_TWO))?.state === 'removed');
    assert.equal(count(fake, 'DELETE', providerDeletes(DR_TWO)), 1);
    assert.ok(!fake.providers.has(DR_TWO));

    // Reactivation: listed again.
    await neuron.storage.db.updateTable('providers').set({ status: 'active' }).where('npi', '=', DR_TWO).execute();
    await waitFor('reactivated provider registered', async () => (await rosterRegistryState(neuron, DR_TWO))?.state === 'registered');
    assert.ok(fake.providers.has(DR_TWO));

    // Deleted from the roster: the removal still reaches the registry.
    await neuron.storage.db.deleteFrom('providers').where('npi', '=', DR_ONE).execute();
    await waitFor('deleted provider removed', () => count(fake, 'DELETE', providerDeletes(DR_ONE)) === 1);
    await waitFor('removal confirmed', async () => !(await neuron.presence.registryStatus()).providers.some((p) => p.npi === DR_ONE));

    // The registry already holds a provider this Neuron has no record of (registered by an earlier
    // installation with these credentials): "already registered" counts as done.
    const stored = await neuron.storage.db
      .selectFrom('settings')
      .select('value')
      .where('name', '=', 'registry.registration')
      .executeTakeFirstOrThrow();
    const credentials = JSON.parse(stored.value) as { registrationId: string; bearerToken: string };
    await new AxonClient({ baseUrl: fake.url }).registerProvider(credentials, {
      npi: DR_SUSPENDED,
      name: 'Dr. Synthetic Elsewhere',
      types: ['physician'],
    });
    const postsBefore = count(fake, 'POST', PROVIDER_POSTS);
    await insertProvider(neuron, DR_SUSPENDED);
    neuron.presence.providersChanged();
    await waitFor('duplicate counted as registered', async () => (await rosterRegistryState(neuron, DR_SUSPENDED))?.state === 'registered');
    assert.equal(count(fake, 'POST', PROVIDER_POSTS), postsBefore + 1);
    assert.equal(count(fake, 'POST', NEURON_POSTS), 1);

    // A type outside the registry's taxonomy is refused once and not resubmitted at every heartbeat.
    await insertProvider(h.neuron, DR_PENDING, 'active', ['astrology']);
    neuron.presence.providersChanged();
    await waitFor('rejected', async () => (await rosterRegistryState(neuron, DR_PENDING))?.state === 'rejected');
    const refused = count(fake, 'POST', PROVIDER_POSTS);
    const beats = count(fake, 'PUT', HEARTBEATS);
    await waitFor('more heartbeats', () => count(fake, 'PUT', HEARTBEATS) >= beats + 4);
    assert.equal(count(fake, 'POST', PROVIDER_POSTS), refused);
    assert.match((await rosterRegistryState(neuron, DR_PENDING))?.error ?? '', /taxonomy/);
    assert.equal((await auditTypes(neuron, 'registry.provider_rejected')).length, 1);
  });

  it('persists the registration across a restart: no second registration, same id, heartbeats resume at once', async () => {
    const h = await start();
    await waitFor('registered', async () => (await h.neuron.presence.registryStatus()).state === 'registered');
    const firstId = (await h.neuron.presence.registryStatus()).registration_id;
    await h.restart();
    const beats = count(fake, 'PUT', HEARTBEATS);
    await waitFor('a heartbeat from the restarted Neuron', () => count(fake, 'PUT', HEARTBEATS) > beats);
    assert.equal(count(fake, 'POST', NEURON_POSTS), 1, 'no second POST /v1/neurons');
    assert.equal((await h.neuron.presence.registryStatus()).registration_id, firstId);
    // The new port is announced by the first heartbeat.
    const [entry] = [...fake.neurons.values()];
    await waitFor('new endpoint announced', () => entry?.endpointUrl === h.neuron.address().handshakeUrl);
    // The token is in the settings table, nowhere else.
    const row = await h.neuron.storage.db
      .selectFrom('settings')
      .select('value')
      .where('name', '=', 'registry.registration')
      .executeTakeFirstOrThrow();
    assert.ok(row.value.includes(entry!.bearerToken));
    await assertTokenNowhere(h);
  });

  it('a 401 makes the registration invalid: visible in status, the API, the log and the audit log; patients are still served; reset after confirmation', async () => {
    const h = await start();
    const neuron = h.neuron;
    await insertProvider(neuron, DR_ONE);
    neuron.presence.providersChanged();
    await waitFor('provider registered', async () => (await rosterRegistryState(neuron, DR_ONE))?.state === 'registered');
    const [entry] = [...fake.neurons.values()];
    assert.ok(entry);
    fake.revokeToken(entry.registrationId);

    await waitFor('invalid', async () => (await neuron.presence.registryStatus()).state === 'invalid');
    const status = await neuron.presence.registryStatus();
    assert.equal(status.registration_id, entry.registrationId);
    assert.match(status.remedy ?? '', /neuron registry reset --yes/);
    assert.match(status.last_error ?? '', /unauthorized/);
    const beats = count(fake, 'PUT', HEARTBEATS);
    const audits = await auditTypes(neuron, 'registry.registration_invalid');
    assert.equal(audits.length, 1);
    assert.equal(audits[0]?.details['reason'], 'unauthorized');
    assert.equal(audits[0]?.actor, 'system');
    assert.ok(
      h.logs.some((line) => line.includes('"level":50') && line.includes('registry registration is not usable')),
      'an error line in the log',
    );

    // GET /v1/status shows it to API clients.
    const apiKeys = new ApiKeyService({ storage: neuron.storage, audit: neuron.audit });
    const { key } = await apiKeys.create({ label: 'presence-test', scopes: ['read'], expiresAt: null, actor: 'test' });
    const api = await fetch(`${neuron.address().url}/v1/status`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(api.status, 200);
    const apiBody = (await api.json()) as { registry: { state: string; registered: boolean } };
    assert.equal(apiBody.registry.state, 'invalid');
    assert.equal(apiBody.registry.registered, false);

    // Patients are still served: a real handshake succeeds.
    const patient = generatePatientKeys();
    const agentId = `presence-patient-${process.pid}`;
    const consentToken = createConsentToken({ patientAgentId: agentId, providerNpi: DR_ONE, consentedActions: ['office_visit'] }, patient);
    const result = await establishRelationship(neuron.address().handshakeUrl, {
      patientAgentId: agentId,
      keys: patient,
      endpoint: 'wss://patient.example/agent',
      consentToken,
    });
    assert.equal(result.status, 'new');
    assert.equal(result.providerNpi, DR_ONE);

    // No silent retry loop.
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.equal(count(fake, 'PUT', HEARTBEATS), beats, 'no heartbeat after the 401');

    // The operator's view from other processes, read from the database (run side by side: each is a cold tsx start).
    const [cliStatus, human, registryStatus, printed, unconfirmed, whileRunning] = await Promise.all([
      cli(h.configFile, ['status', '--json']),
      cli(h.configFile, ['status']),
      cli(h.configFile, ['registry', 'status']),
      cli(h.configFile, ['config', '--print']),
      cli(h.configFile, ['registry', 'reset']),
      cli(h.configFile, ['registry', 'reset', '--yes']),
    ]);
    const parsed = JSON.parse(cliStatus.stdout) as {
      registry: {
        state: string;
        registration_id: string;
        remedy: string;
        registry_url: string;
        providers: Array<{ npi: string; registry_state: string }>;
      };
    };
    assert.equal(parsed.registry.state, 'invalid');
    assert.equal(parsed.registry.registration_id, entry.registrationId);
    assert.equal(parsed.registry.registry_url, fake.url);
    assert.match(parsed.registry.remedy, /registry reset/);
    assert.deepEqual(
      parsed.registry.providers.map((p) => [p.npi, p.registry_state]),
      [[DR_ONE, 'registered']],
    );
    assert.match(human.stdout, /registry +INVALID \(registration [0-9a-f-]+\)/);
    assert.match(human.stdout, /remedy +The registry no longer accepts/);
    assert.equal(registryStatus.code, 1, 'registry status exits 1 while the registration is invalid');
    assert.match(registryStatus.stdout, new RegExp(`${DR_ONE} .*\\(active\\) +registered`));
    await assertTokenNowhere(h, `${cliStatus.stdout}${human.stdout}${registryStatus.stdout}${printed.stdout}${cliStatus.stderr}`);

    // Reset: refused without --yes and while an instance runs the registry client.
    assert.equal(unconfirmed.code, 2);
    assert.match(unconfirmed.stderr, /--yes/);
    assert.equal(whileRunning.code, 1);
    assert.match(whileRunning.stderr, /runs the registry client/);

    // The registry operator removes the old entry; the operator stops the Neuron and resets.
    fake.forget(entry.registrationId);
    await neuron.stop();
    const reset = await cli(h.configFile, ['registry', 'reset', '--yes']);
    assert.equal(reset.code, 0, reset.stderr);
    assert.match(reset.stdout, new RegExp(`forgot registration ${entry.registrationId}`));
    const restarted = await h.restart();
    const resets = await auditTypes(restarted, 'registry.reset');
    assert.equal(resets.length, 1);
    assert.equal(resets[0]?.actor, 'cli');
    assert.ok(!JSON.stringify(resets).includes(entry.registrationId), 'the audit log names a reference, not the id');
    await waitFor('registered anew', async () => (await restarted.presence.registryStatus()).state === 'registered');
    assert.equal(count(fake, 'POST', NEURON_POSTS), 2);
    // Listed again; this fake still holds the old entry and answers "already registered", which counts as done.
    await waitFor('provider listed again', async () => (await rosterRegistryState(restarted, DR_ONE))?.state === 'registered');
  });
});

describe('neuron init with a registry URL', () => {
  it('registers the organization with the full public handshake URL; start reuses the registration', async () => {
    const fake = await startFakeRegistry();
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(path.join(tmpdir(), 'neuron-init-registry-'));
    try {
      const configFile = path.join(dir, 'neuron.config.json');
      const init = await cli(configFile, [
        'init',
        '--yes',
        '--name',
        'Synthetic Clinic',
        '--npi',
        ORG_NPI,
        '--public-url',
        'https://neuron.synthetic.example:8443',
        '--registry-url',
        fake.url,
      ]);
      assert.equal(init.code, 0, init.stderr);
      assert.match(init.stdout, /registry +registered with/);
      const [entry] = [...fake.neurons.values()];
      assert.equal(entry?.endpointUrl, 'wss://neuron.synthetic.example:8443/ws/handshake');
      assert.equal(entry?.organizationName, 'Synthetic Clinic');
      assert.ok(!init.stdout.includes(entry!.bearerToken));

      const status = await cli(configFile, ['registry', 'status', '--json']);
      assert.equal(status.code, 0, status.stderr);
      const view = JSON.parse(status.stdout) as { state: string; registration_id: string };
      assert.equal(view.state, 'registered');
      assert.equal(view.registration_id, entry?.registrationId);
      assert.ok(!status.stdout.includes(entry!.bearerToken));

      // A running Neuron uses it: heartbeats, no second registration.
      const { loadConfig } = await import('../../src/foundation/config/index.ts');
      const { createNeuron } = await import('../../src/main.ts');
      const loaded = loadConfig({
        configFile,
        env: {},
        overrides: { 'server.port': 0, 'logging.level': 'silent', 'discovery.enabled': false, 'registry.heartbeat_interval_ms': 150 },
      });
      const neuron = createNeuron(loaded, { defaultMetrics: false });
      await neuron.start();
      try {
        await waitFor('a heartbeat', () => count(fake, 'PUT', HEARTBEATS) > 0);
        assert.equal(count(fake, 'POST', NEURON_POSTS), 1);
        assert.equal(entry?.endpointUrl, 'wss://neuron.synthetic.example:8443/ws/handshake');
      } finally {
        await neuron.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await fake.close();
    }
  });

  it('with the registry unreachable, init still succeeds and says start will keep trying', async () => {
    const fake = await startFakeRegistry();
    fake.setFault('down');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(path.join(tmpdir(), 'neuron-init-registry-'));
    try {
      const configFile = path.join(dir, 'neuron.config.json');
      // A short request timeout keeps init's wait (twice the timeout) short.
      const init = await cli(configFile, ['init', '--yes', '--npi', ORG_NPI, '--registry-url', fake.url], {
        NEURON_REGISTRY__REQUEST_TIMEOUT_MS: '300',
      });
      assert.equal(init.code, 0, init.stderr);
      assert.match(init.stdout, /registry +not reachable yet/);
      assert.match(init.stdout, /keeps trying to register/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await fake.close();
    }
  });
});
