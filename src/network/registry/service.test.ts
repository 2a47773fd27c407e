import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startFakeRegistry, type FakeRegistry } from '../../../test/fakes/fake-registry.ts';
import { NeuronError } from '../../foundation/errors/index.ts';
import { AxonClient } from './client.ts';
import { RegistryService, type RegistryAuditEvent, type RegistryLogger, type RegistryServiceOptions } from './index.ts';
import { MemoryRegistryStateStore } from '../../../test/helpers/registry-state.ts';
import type { RegistryStateStore } from './state.ts';
import { DatabaseRegistryStateStore } from './store.ts';
import { openStorage } from '../../foundation/storage/index.ts';
import { waitFor } from '../../../test/helpers/wait.ts';

const ORG = { npi: '1245319599', name: 'Synthetic Family Practice', type: 'practice' };
const ENDPOINT = 'ws://127.0.0.1:8600/ws/handshake';
const DR_ONE = { npi: '1679576722', name: 'Dr. Synthetic One', types: ['physician'] };
const DR_TWO = { npi: '1376841239', name: 'Nurse Synthetic Two', types: ['nursing'] };

interface Harness {
  logs: string[];
  audits: RegistryAuditEvent[];
  logger: RegistryLogger;
}

function harness(): Harness {
  const logs: string[] = [];
  const audits: RegistryAuditEvent[] = [];
  const line = (level: string) => (fields: object, message: string) => {
    logs.push(JSON.stringify({ level, ...fields, msg: message }));
  };
  return {
    logs,
    audits,
    logger: { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') },
  };
}

async function pause(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

function count(fake: FakeRegistry, method: string, pattern: RegExp): number {
  return fake.requests.filter((request) => request.method === method && pattern.test(request.path)).length;
}

const NEURON_POSTS = /^\/v1\/neurons$/;
const HEARTBEATS = /^\/v1\/neurons\/[^/]+\/endpoint$/;

/** Neither a bearer token nor a registration id the fake ever issued appears in logs or audit. */
function assertNoSecrets(fake: FakeRegistry, h: Harness, issued: Array<{ registrationId: string; bearerToken: string }> = []): void {
  const secrets = [...fake.neurons.values(), ...issued].flatMap((neuron) => [neuron.bearerToken, neuron.registrationId]);
  assert.ok(secrets.length > 0, 'something was registered');
  const text = `${h.logs.join('\n')}\n${JSON.stringify(h.audits)}`;
  for (const secret of secrets) assert.ok(!text.includes(secret), 'a registration secret leaked into logs or audit');
}

describe('RegistryService against the fake registry', () => {
  let fake: FakeRegistry;
  let services: RegistryService[];
  let h: Harness;

  beforeEach(async () => {
    fake = await startFakeRegistry();
    services = [];
    h = harness();
  });
  afterEach(async () => {
    await Promise.all(services.map((service) => service.stop()));
    await fake.close();
  });

  function service(store: RegistryStateStore, overrides: Partial<RegistryServiceOptions> = {}): RegistryService {
    const created = new RegistryService({
      registryUrl: fake.url,
      endpointUrl: ENDPOINT,
      organization: ORG,
      heartbeatIntervalMs: 100, // small so tests see several heartbeats quickly
      requestTimeoutMs: 2_000, // loopback answers in milliseconds; only the timeout test lowers it
      backoff: { initialMs: 10, maxMs: 80 },
      store,
      logger: h.logger,
      audit: async (event) => {
        h.audits.push(event);
      },
      ...overrides,
    });
    services.push(created);
    return created;
  }

  it('first boot with the registry down: start returns at once, retries, then registers and heartbeats', async () => {
    fake.setFault('down');
    const svc = service(new MemoryRegistryStateStore());
    await svc.start();
    assert.notEqual(svc.status().state, 'registered');

    await waitFor('several failed registration attempts', () => fake.dropped >= 3 && svc.status().consecutiveFailures >= 2);
    assert.equal(svc.status().state, 'registering');
    assert.equal(svc.status().registered, false);
    assert.match(svc.status().lastError ?? '', /register_neuron unreachable/);

    fake.setFault('none');
    await waitFor('registered', () => svc.status().state === 'registered');
    const neuron = [...fake.neurons.values()][0];
    assert.ok(neuron);
    await waitFor('two heartbeats', () => neuron.heartbeats >= 2);

    assert.equal(count(fake, 'POST', NEURON_POSTS), 1);
    const post = fake.requests.find((request) => NEURON_POSTS.test(request.path));
    assert.deepEqual(post?.body, {
      organization_npi: ORG.npi,
      organization_name: ORG.name,
      organization_type: ORG.type,
      neuron_endpoint_url: ENDPOINT,
    });
    assert.equal(neuron.endpointUrl, ENDPOINT);
    const status = svc.status();
    assert.equal(status.registered, true);
    assert.equal(status.registrationId, neuron.registrationId);
    assert.equal(status.consecutiveFailures, 0);
    assert.equal(status.lastError, null);
    assert.notEqual(status.lastHeartbeatAt, null);
    assert.deepEqual(
      h.audits.map((event) => event.type),
      ['registry.registered'],
    );
    assertNoSecrets(fake, h);
  });

  it('recovers on its own after an outage during heartbeats', async () => {
    const svc = service(new MemoryRegistryStateStore());
    await svc.start();
    await waitFor('first heartbeat', () => svc.status().lastHeartbeatAt !== null);

    fake.setFault('error500');
    await waitFor('failures counted', () => svc.status().consecutiveFailures >= 2);
    assert.match(svc.status().lastError ?? '', /heartbeat unreachable \(HTTP 500\)/);
    fake.setFault('down');
    await waitFor('more failures while down', () => svc.status().consecutiveFailures >= 4);
    assert.equal(svc.status().state, 'registered', 'an outage is not an invalid registration');

    const before = [...fake.neurons.values()][0]?.heartbeats ?? 0;
    fake.setFault('none');
    await waitFor('recovered', () => svc.status().consecutiveFailures === 0 && ([...fake.neurons.values()][0]?.heartbeats ?? 0) > before);
    assert.equal(svc.status().lastError, null);
    assert.ok(h.logs.some((line) => line.includes('registry reachable again')));
    assert.equal(count(fake, 'POST', NEURON_POSTS), 1);
    assertNoSecrets(fake, h);
  });

  it('a 401 on heartbeat makes the registration invalid: heartbeats stop, audit and remedy, no retry loop', async () => {
    const store = new MemoryRegistryStateStore();
    const svc = service(store);
    await svc.start();
    await waitFor('first heartbeat', () => svc.status().lastHeartbeatAt !== null);
    const neuron = [...fake.neurons.values()][0];
    assert.ok(neuron);
    const revokedToken = neuron.bearerToken;
    fake.revokeToken(neuron.registrationId);

    await waitFor('invalid', () => svc.status().state === 'invalid');
    const status = svc.status();
    assert.equal(status.registered, false);
    assert.match(status.remedy ?? '', /no longer accepts this Neuron's registration/);
    assert.match(status.remedy ?? '', /neuron registry reset/);
    assert.match(status.lastError ?? '', /heartbeat unauthorized \(HTTP 401\)/);
    const event = h.audits.find((audit) => audit.type === 'registry.registration_invalid');
    assert.ok(event, 'audit event emitted');
    assert.equal(event.details['reason'], 'unauthorized');
    assert.equal(event.details['remedy'], status.remedy);
    assert.ok(h.logs.some((line) => line.includes('"level":"error"') && line.includes('registry registration is not usable')));
    assert.equal((await store.load())?.status, 'invalid', 'the verdict is persisted');

    // Several heartbeat intervals later, not one more request went out.
    const requestsAtInvalid = fake.requests.length;
    await pause(500);
    assert.equal(fake.requests.length, requestsAtInvalid, 'no silent retry loop');

    // Everything else keeps working: status answers and provider changes are kept for later.
    const provider = await svc.registerProvider(DR_ONE);
    assert.equal(provider.state, 'pending');
    assert.equal(fake.requests.length, requestsAtInvalid);

    // A restart with the same store stays invalid and does not contact the registry.
    await svc.stop();
    const restarted = service(store);
    await restarted.start();
    await waitFor('restarted service reports invalid', () => restarted.status().state === 'invalid');
    assert.match(restarted.status().remedy ?? '', /neuron registry reset/);
    await pause(300);
    assert.equal(fake.requests.length, requestsAtInvalid);
    assertNoSecrets(fake, h, [{ registrationId: neuron.registrationId, bearerToken: revokedToken }]);
  });

  it('a 401 on a provider call also makes the registration invalid', async () => {
    // A long interval keeps heartbeats out of the way: only the provider call can see the 401.
    const svc = service(new MemoryRegistryStateStore(), { heartbeatIntervalMs: 60_000 });
    await svc.start();
    await waitFor('registered', () => svc.status().state === 'registered');
    fake.setFault('unauthorized');
    const provider = await svc.registerProvider(DR_ONE);
    assert.equal(provider.state, 'pending');
    await waitFor('invalid', () => svc.status().state === 'invalid');
    const event = h.audits.find((audit) => audit.type === 'registry.registration_invalid');
    assert.equal(event?.details['operation'], 'register_provider');
    assert.equal(count(fake, 'PUT', HEARTBEATS), 0);
    assertNoSecrets(fake, h);
  });

  it('provider registration is idempotent: a duplicate counts as done', async () => {
    const store = new MemoryRegistryStateStore();
    const svc = service(store);
    await svc.start();
    await waitFor('registered', () => svc.status().state === 'registered');

    // Someone (an earlier installation of this Neuron, say) already registered the provider.
    const record = await store.load();
    assert.ok(record);
    await new AxonClient({ baseUrl: fake.url }).registerProvider(record, DR_ONE);

    const first = await svc.registerProvider(DR_ONE);
    assert.deepEqual(first, { npi: DR_ONE.npi, state: 'registered', lastError: null });
    const posts = count(fake, 'POST', /\/providers$/);
    const again = await svc.registerProvider(DR_ONE);
    assert.equal(again.state, 'registered');
    assert.equal(count(fake, 'POST', /\/providers$/), posts, 'a registered provider is not sent again');

    // A type outside the taxonomy is refused once, not retried.
    const refused = await svc.registerProvider({ npi: '1003000126', name: 'Dr. Synthetic Three', types: ['astrology'] });
    assert.equal(refused.state, 'rejected');
    assert.match(refused.lastError ?? '', /taxonomy/);
    assert.ok(h.audits.some((audit) => audit.type === 'registry.provider_rejected'));
    assert.equal(svc.status().state, 'registered', 'a refused provider does not invalidate the registration');
    assertNoSecrets(fake, h);
  });

  it('propagates provider removals, including ones made while the registry is down', async () => {
    const svc = service(new MemoryRegistryStateStore());
    await svc.start();
    await waitFor('registered', () => svc.status().state === 'registered');

    await svc.syncProviders([DR_ONE, DR_TWO]);
    await waitFor('both providers listed', () => fake.providers.has(DR_ONE.npi) && fake.providers.has(DR_TWO.npi));
    await waitFor('both registered in status', () => svc.status().providers.every((provider) => provider.state === 'registered'));

    await svc.syncProviders([DR_ONE]);
    await waitFor('DR_TWO removed', () => !fake.providers.has(DR_TWO.npi));
    await waitFor('status drops DR_TWO', () => svc.status().providers.length === 1);
    assert.ok(fake.requests.some((request) => request.method === 'DELETE' && request.path.endsWith(`/providers/${DR_TWO.npi}`)));

    fake.setFault('down');
    const pending = await svc.removeProvider(DR_ONE.npi);
    assert.equal(pending.state, 'removing');
    assert.match(pending.lastError ?? '', /unreachable/);
    fake.setFault('none');
    await waitFor('DR_ONE removed after recovery', () => !fake.providers.has(DR_ONE.npi));
    await waitFor('status empty', () => svc.status().providers.length === 0);
    assertNoSecrets(fake, h);
  });

  it('gives up on a slow registry after the request timeout and retries', async () => {
    fake.setFault({ slow: 5_000 });
    const svc = service(new MemoryRegistryStateStore(), { requestTimeoutMs: 100 });
    await svc.start();
    await waitFor('a timed-out attempt', () => /timed out after 100 ms/.test(svc.status().lastError ?? ''));
    await waitFor('a second attempt', () => count(fake, 'POST', NEURON_POSTS) >= 2);
    assert.equal(svc.status().state, 'registering');
    fake.setFault('none');
    await waitFor('registered', () => svc.status().state === 'registered');
    assertNoSecrets(fake, h);
  });

  it('persists the registration and reuses it on restart (no second registration)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'neuron-registry-'));
    // The embedded default: the registration kept in the SQLite database, reopened for the restart.
    const options = {
      url: '',
      sqliteFile: path.join(dir, 'neuron.sqlite'),
      sqliteSynchronous: 'FULL',
      busyTimeoutMs: 5_000,
      poolMax: 1,
    } as const;
    let storage = await openStorage(options);
    await storage.migrate();
    try {
      const first = service(new DatabaseRegistryStateStore(storage));
      await first.start();
      await waitFor('first heartbeat', () => first.status().lastHeartbeatAt !== null);
      await first.registerProvider(DR_ONE);
      const registrationId = first.status().registrationId;
      await first.stop();
      await storage.close();
      storage = await openStorage(options);

      const neuron = [...fake.neurons.values()][0];
      assert.ok(neuron);
      const heartbeatsBefore = neuron.heartbeats;
      const second = service(new DatabaseRegistryStateStore(storage));
      await second.start();
      await waitFor('heartbeat from the restarted service', () => neuron.heartbeats > heartbeatsBefore);
      assert.equal(second.status().registrationId, registrationId);
      assert.equal(second.status().state, 'registered');
      assert.deepEqual(second.status().providers, [{ npi: DR_ONE.npi, state: 'registered', lastError: null }]);
      assert.equal(count(fake, 'POST', NEURON_POSTS), 1);
      assertNoSecrets(fake, h);
      await second.stop();
    } finally {
      await storage.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('an NPI already registered without stored credentials is an operator fault, not a retry loop', async () => {
    await new AxonClient({ baseUrl: fake.url }).registerNeuron({
      organizationNpi: ORG.npi,
      organizationName: ORG.name,
      organizationType: ORG.type,
      endpointUrl: ENDPOINT,
    });
    const svc = service(new MemoryRegistryStateStore());
    await svc.start();
    await waitFor('invalid', () => svc.status().state === 'invalid');
    assert.match(svc.status().remedy ?? '', /already registered/);
    assert.match(svc.status().remedy ?? '', /never reissued/);
    assert.equal(h.audits.at(-1)?.details['reason'], 'organization_already_registered');
    await pause(300);
    assert.equal(count(fake, 'POST', NEURON_POSTS), 2, 'one attempt by the service, no retries');
    assertNoSecrets(fake, h);
  });

  it('refuses to reuse a registration stored for another registry', async () => {
    const store = new MemoryRegistryStateStore();
    await store.save({
      registrationId: 'stored-id-for-another-registry',
      bearerToken: 'stored-token-for-another-registry',
      registryUrl: 'https://axon.other.example/',
      organizationNpi: ORG.npi,
      endpointUrl: ENDPOINT,
      registeredAt: new Date().toISOString(),
      status: 'registered',
      lastHeartbeatAt: null,
      consecutiveFailures: 0,
      lastError: null,
    });
    const svc = service(store);
    await svc.start();
    await waitFor('invalid', () => svc.status().state === 'invalid');
    assert.match(svc.status().remedy ?? '', /belongs to registry https:\/\/axon\.other\.example\//);
    assert.equal(fake.requests.length, 0);
    assert.equal((await store.load())?.status, 'registered', "the other registry's registration is left intact");
    const text = h.logs.join('\n') + JSON.stringify(h.audits);
    assert.ok(!text.includes('stored-token-for-another-registry') && !text.includes('stored-id-for-another-registry'));
  });

  it('unreadable stored credentials are an operator fault; nothing is sent', async () => {
    const store = new MemoryRegistryStateStore();
    store.load = async () => {
      throw new Error('disk says no');
    };
    const svc = service(store);
    await svc.start();
    await waitFor('invalid', () => svc.status().state === 'invalid');
    assert.match(svc.status().remedy ?? '', /cannot be read \(disk says no\)/);
    assert.equal(h.audits.at(-1)?.details['reason'], 'state_unreadable');
    await pause(100);
    assert.equal(fake.requests.length, 0, 'no registration over credentials that may still exist');
  });

  it('stop() cancels an in-flight heartbeat and resolves promptly', async () => {
    const svc = service(new MemoryRegistryStateStore(), { requestTimeoutMs: 10_000 });
    await svc.start();
    await waitFor('registered', () => svc.status().state === 'registered');
    const before = count(fake, 'PUT', HEARTBEATS);
    fake.setFault({ slow: 5_000 });
    await waitFor('heartbeat in flight', () => count(fake, 'PUT', HEARTBEATS) > before);
    const started = Date.now();
    await svc.stop();
    // Generous margin: well under the registry's 5 s delay.
    assert.ok(Date.now() - started < 2_000, 'stop did not wait for the slow registry');
    assert.equal(svc.status().running, false);
  });

  it('stop() during registration waits for the answer and keeps the token', async () => {
    fake.setFault({ slow: 300 });
    const store = new MemoryRegistryStateStore();
    const svc = service(store, { requestTimeoutMs: 10_000 });
    await svc.start();
    await waitFor('registration in flight', () => count(fake, 'POST', NEURON_POSTS) >= 1);
    await svc.stop();
    const saved = await store.load();
    assert.ok(saved, 'the registration answered after stop() was saved');
    assert.equal(saved.registrationId, [...fake.neurons.values()][0]?.registrationId);
    assert.equal(svc.status().running, false);
  });

  it('reset() clears the stored registration so the next start registers again', async () => {
    const store = new MemoryRegistryStateStore();
    const svc = service(store);
    await svc.start();
    await waitFor('registered', () => svc.status().state === 'registered');
    await assert.rejects(svc.reset(), (error: unknown) => error instanceof NeuronError && error.code === 'CONFLICT');
    await svc.stop();
    await svc.reset();
    assert.equal(await store.load(), null);
    assert.equal(svc.status().state, 'unregistered');
    assert.equal(svc.status().registrationId, null);
  });

  it('validates its options, including the heartbeat interval against the staleness window', () => {
    const store = new MemoryRegistryStateStore();
    const invalid = (overrides: Partial<RegistryServiceOptions>, field: string): void => {
      assert.throws(
        () => service(store, overrides),
        (error: unknown) =>
          error instanceof NeuronError && error.code === 'VALIDATION_FAILED' && (error.errors ?? []).some((e) => e.path === field),
      );
    };
    invalid({ heartbeatIntervalMs: 5 * 60_000 }, 'registry.heartbeat_interval_ms');
    invalid({ heartbeatIntervalMs: 0 }, 'registry.heartbeat_interval_ms');
    invalid({ endpointUrl: 'https://neuron.example.test/ws/handshake' }, 'endpointUrl');
    invalid({ endpointUrl: 'wss://neuron.example.test/' }, 'endpointUrl');
    invalid({ registryUrl: 'ftp://axon.example.test' }, 'registry.url');
    invalid({ backoff: { initialMs: 100, maxMs: 10 } }, 'registry.backoff_max_ms');
    assert.doesNotThrow(() => service(store, { heartbeatIntervalMs: 5 * 60_000 - 1 }));
  });

  it('does nothing when disabled', async () => {
    const svc = service(new MemoryRegistryStateStore(), { enabled: false, registryUrl: '' });
    await svc.start();
    assert.equal(svc.status().state, 'disabled');
    await pause(100);
    assert.equal(fake.requests.length, 0);
  });
});
