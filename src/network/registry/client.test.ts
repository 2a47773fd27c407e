import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeRegistry, type FakeRegistry } from '../../../test/fakes/fake-registry.ts';
import { AxonClient } from './client.ts';
import { type RegistryError, isRegistryError, type RegistryErrorKind } from './errors.ts';
import { NeuronError } from '../../foundation/errors/index.ts';

const ENDPOINT = 'wss://neuron.example.test/ws/handshake';

async function expectKind(promise: Promise<unknown>, kind: RegistryErrorKind): Promise<RegistryError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isRegistryError(error), `expected a RegistryError, got ${String(error)}`);
    assert.ok(error instanceof NeuronError, 'RegistryError is a NeuronError');
    assert.equal(error.kind, kind, error.describe());
    return error;
  }
  assert.fail(`expected a ${kind} error`);
}

describe('AxonClient against the fake registry', () => {
  let fake: FakeRegistry;
  let client: AxonClient;

  before(async () => {
    fake = await startFakeRegistry();
    // Generous for a loopback registry; the timeout test below uses its own small value.
    client = new AxonClient({ baseUrl: fake.url, requestTimeoutMs: 5_000 });
  });
  after(async () => {
    await fake.close();
  });
  beforeEach(() => {
    fake.setFault('none');
  });

  it('registers a neuron sending every field, heartbeats, and manages providers', async () => {
    const registration = await client.registerNeuron({
      organizationNpi: '1245319599',
      organizationName: 'Synthetic Clinic',
      organizationType: 'practice',
      endpointUrl: ENDPOINT,
    });
    assert.equal(registration.status, 'reachable');
    assert.ok(registration.registrationId.length > 0);
    const post = fake.requests.find((request) => request.method === 'POST' && request.path === '/v1/neurons');
    assert.deepEqual(post?.body, {
      organization_npi: '1245319599',
      organization_name: 'Synthetic Clinic',
      organization_type: 'practice',
      neuron_endpoint_url: ENDPOINT,
    });

    assert.deepEqual(await client.heartbeat(registration, ENDPOINT), { status: 'reachable' });
    const put = fake.requests.at(-1);
    assert.equal(put?.method, 'PUT');
    assert.equal(put?.authorization, `Bearer ${registration.bearerToken}`);
    assert.deepEqual(put?.body, { neuron_endpoint_url: ENDPOINT });

    const provider = await client.registerProvider(registration, {
      npi: '1679576722',
      name: 'Dr. Synthetic One',
      types: ['physician'],
      specialty: 'family medicine',
      credentials: [{ type: 'license', issuer: 'Test Board', identifier: 'LIC-0001', status: 'active', expiresAt: '2030-01-01' }],
    });
    assert.deepEqual(provider, { providerId: '1679576722', status: 'registered' });
    assert.deepEqual((fake.requests.at(-1)?.body as { credentials: unknown } | undefined)?.credentials, [
      { type: 'license', issuer: 'Test Board', identifier: 'LIC-0001', status: 'active', expires_at: '2030-01-01' },
    ]);

    const entry = await client.getEntry('1679576722');
    assert.equal(entry?.['name'], 'Dr. Synthetic One');
    assert.equal(entry?.['neuron_endpoint_url'], ENDPOINT);
    assert.equal(await client.getEntry('1376841239'), null);

    const results = await client.search({ providerType: 'physician', limit: 5 });
    assert.deepEqual(
      results.map((result) => result['npi']),
      ['1679576722'],
    );
    assert.equal(fake.requests.at(-1)?.query['provider_type'], 'physician');

    const duplicate = await expectKind(
      client.registerProvider(registration, { npi: '1679576722', name: 'Dr. Synthetic One', types: ['physician'] }),
      'duplicate',
    );
    assert.equal(duplicate.registryStatus, 400);
    assert.match(duplicate.registryError ?? '', /already registered/);

    await client.deleteProvider(registration, '1679576722');
    assert.equal(fake.requests.at(-1)?.method, 'DELETE');
    assert.equal(fake.providers.has('1679576722'), false);
  });

  it('classifies refusals: duplicate organization, Luhn, taxonomy and 401', async () => {
    const registration = await client.registerNeuron({
      organizationNpi: '1003000126',
      organizationName: 'Synthetic Lab',
      organizationType: 'laboratory',
      endpointUrl: ENDPOINT,
    });
    await expectKind(
      client.registerNeuron({
        organizationNpi: '1003000126',
        organizationName: 'Again',
        organizationType: 'practice',
        endpointUrl: ENDPOINT,
      }),
      'duplicate',
    );
    const luhn = await expectKind(
      client.registerNeuron({
        organizationNpi: '1234567890',
        organizationName: 'Bad NPI',
        organizationType: 'practice',
        endpointUrl: ENDPOINT,
      }),
      'rejected',
    );
    assert.equal(luhn.registryStatus, 400);
    const taxonomy = await expectKind(
      client.registerProvider(registration, { npi: '1649218926', name: 'Dr. Synthetic Two', types: ['astrology'] }),
      'rejected',
    );
    assert.match(taxonomy.registryError ?? '', /taxonomy/);

    const unauthorized = await expectKind(client.heartbeat({ ...registration, bearerToken: 'wrong-token' }, ENDPOINT), 'unauthorized');
    assert.equal(unauthorized.registryStatus, 401);
    await expectKind(client.heartbeat({ registrationId: 'no-such-id', bearerToken: registration.bearerToken }, ENDPOINT), 'unauthorized');

    // Secrets never appear in what an error carries.
    const serialized = JSON.stringify({ ...unauthorized, message: unauthorized.message, describe: unauthorized.describe() });
    assert.ok(!serialized.includes(registration.bearerToken));
    assert.ok(!serialized.includes(registration.registrationId));
  });

  it('refuses locally to register without an endpoint URL', async () => {
    const before = fake.requests.length;
    await expectKind(
      client.registerNeuron({ organizationNpi: '1376841239', organizationName: 'X', organizationType: 'practice', endpointUrl: '' }),
      'rejected',
    );
    assert.equal(fake.requests.length, before, 'nothing was sent');
  });

  it('classifies 5xx, a dropped connection, a timeout and an oversized answer as unreachable', async () => {
    fake.setFault('error500');
    const server = await expectKind(client.search({}), 'unreachable');
    assert.equal(server.registryStatus, 500);

    fake.setFault({ slow: 5_000 });
    const quick = new AxonClient({ baseUrl: fake.url, requestTimeoutMs: 100 });
    const started = Date.now();
    const slow = await expectKind(quick.search({}), 'unreachable');
    assert.match(slow.detail, /timed out/);
    // Generous margin: the request must give up well before the registry answers.
    assert.ok(Date.now() - started < 4_000, 'the timeout cut the request short');

    fake.setFault('oversized');
    const big = await expectKind(client.getEntry('1245319599'), 'unreachable');
    assert.match(big.detail, /larger than/);

    // Last, because a reset leaves the client's connection pool with dead sockets for a moment.
    fake.setFault('down');
    const down = await expectKind(client.search({}), 'unreachable');
    assert.equal(down.registryStatus, null);
  });

  it('reports a caller cancellation as aborted, not as an outage', async () => {
    fake.setFault({ slow: 5_000 });
    const controller = new AbortController();
    const pending = client.search({}, { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expectKind(pending, 'aborted');
  });
});
