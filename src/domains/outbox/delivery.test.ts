/**
 * Delivery of outbox notices by the worker of a real Neuron to real HTTP receivers on 127.0.0.1:
 * signatures, retries with backoff, restarts, dead letters and operator retry, a hanging receiver,
 * redirects, lease takeover, two instances on one database, and webhooks through the same worker.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { verifyAttestation } from 'neuron-careagent-client';
import { databaseCounts } from '../../cli/commands/status.ts';
import { isoNow } from '../../foundation/storage/index.ts';
import { startTestNeuron, type TestNeuron } from '../../../test/helpers/neuron.ts';
import {
  api,
  cleanupAfterEach,
  connectPatient,
  createApiKey,
  deferredReceiver,
  FAST_OUTBOX,
  providerSeed,
  type Behaviour,
  type Receiver,
} from '../../../test/helpers/providers.ts';
import { publishWebhookEvent } from '../webhooks/events.ts';
import { HEADER, verifyProviderNotice, verifyWebhookSignature } from './signing.ts';
import { enqueue, getOutboxRow, type OutboxRow } from './store.ts';
import { waitFor } from '../../../test/helpers/wait.ts';

const PROVIDER = '1679576722';
const OTHER_PROVIDER = '1376841239';

const defer = cleanupAfterEach();
const receiver = (behaviour?: Behaviour): Promise<Receiver> => deferredReceiver(defer, behaviour);

async function neuron(options: {
  providers: Array<Record<string, unknown>>;
  outbox?: Record<string, unknown>;
  dataDir?: string;
  instanceId?: string;
}): Promise<TestNeuron> {
  const t = await startTestNeuron({
    ...(options.dataDir ? { dataDir: options.dataDir } : {}),
    config: { providers: options.providers, outbox: { ...FAST_OUTBOX, ...options.outbox } },
    ...(options.instanceId ? { neuronOptions: { instanceId: options.instanceId } } : {}),
  });
  defer(() => t.stop());
  return t;
}

/** Writes a provider notice the way the handshake does: in a transaction, through enqueue. */
async function enqueueNotice(t: TestNeuron, npi: string): Promise<string> {
  const eventId = randomUUID();
  const at = isoNow();
  const body = JSON.stringify({
    event_id: eventId,
    relationship_id: randomUUID(),
    patient_agent_id: `patient-${eventId.slice(0, 8)}`,
    patient_public_key: 'A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg',
    patient_endpoint: 'wss://patient.example/agent',
    consented_actions: ['office_visit'],
    established_at: at,
    attestation: { payload: 'e30', signature: 'x'.repeat(86) },
  });
  await t.neuron.storage.transaction((trx) =>
    enqueue(trx, { kind: 'provider.relationship', eventType: 'relationship.established', target: npi, body, eventId }, at),
  );
  return eventId;
}

async function row(t: TestNeuron, eventId: string): Promise<OutboxRow> {
  const found = await getOutboxRow(t.neuron.storage.db, eventId);
  assert.ok(found, `outbox row ${eventId}`);
  return found;
}

const eventIdOf = (r: { headers: Record<string, unknown> }): unknown => r.headers[HEADER.eventId.toLowerCase()];

describe('outbox delivery', () => {
  test('a new relationship reaches the provider CareAgent, signed by the organization key over the exact body', async () => {
    const provider = await receiver();
    const t = await neuron({ providers: [providerSeed(PROVIDER, `${provider.url}/notices`)] });
    const patient = await connectPatient(t.handshakeUrl, PROVIDER);

    await waitFor('the notice arrives', () => provider.accepted().length === 1);
    const received = provider.requests[0]!;
    assert.equal(received.method, 'POST');
    assert.equal(received.path, '/notices');
    assert.match(String(received.headers['content-type']), /^application\/json/);
    const orgKey = t.neuron.organizationKey.publicKey;
    assert.equal(received.headers['neuron-public-key'], orgKey);
    assert.equal(received.headers['neuron-key-id'], t.neuron.organizationKey.id);
    assert.ok(
      verifyProviderNotice(received.body, received.headers['neuron-signature'] as string, orgKey),
      'the signature verifies over the raw body',
    );
    assert.ok(
      !verifyProviderNotice(received.body.replace('office_visit', 'office_visiT'), received.headers['neuron-signature'] as string, orgKey),
      'a changed body does not verify',
    );

    const notice = JSON.parse(received.body) as Record<string, any>;
    assert.equal(eventIdOf(received), notice.event_id);
    assert.equal(notice.relationship_id, patient.relationshipId);
    assert.equal(notice.patient_agent_id, patient.patientAgentId);
    assert.equal(notice.patient_endpoint, `wss://${patient.patientAgentId}.patients.example/agent`);
    assert.deepEqual(notice.consented_actions, ['office_visit', 'lab_results']);
    assert.equal(typeof notice.established_at, 'string');
    const attested = verifyAttestation(notice.attestation, orgKey, { relationship_id: patient.relationshipId, provider_npi: PROVIDER });
    assert.equal(attested.patient_public_key, notice.patient_public_key);

    await waitFor('the row is marked delivered', async () => (await row(t, notice.event_id)).status === 'delivered');
    const delivered = await row(t, notice.event_id);
    assert.equal(delivered.attempts, 1);
    assert.equal(delivered.locked_by, null);
  });

  test('a provider that is down for the first attempts gets the notice once it is back', async () => {
    const provider = await receiver((index) => ({ status: index < 2 ? 503 : 200 }));
    const t = await neuron({ providers: [providerSeed(PROVIDER, provider.url)] });
    const eventId = await enqueueNotice(t, PROVIDER);

    await waitFor('delivered after retries', async () => (await row(t, eventId)).status === 'delivered');
    assert.equal(provider.requests.length, 3);
    assert.ok(
      provider.requests.every((r) => eventIdOf(r) === eventId),
      'every attempt carries the same event id',
    );
    assert.deepEqual(
      provider.requests.map((r) => r.headers['neuron-delivery-attempt']),
      ['1', '2', '3'],
    );
    assert.equal((await row(t, eventId)).attempts, 3);
  });

  test('a Neuron restarted between attempts still delivers the notice, once', async () => {
    const provider = await receiver(() => ({ status: 503 }));
    const first = await neuron({
      providers: [providerSeed(PROVIDER, provider.url)],
      outbox: { backoff_initial_ms: 300, backoff_max_ms: 300 },
    });
    const eventId = await enqueueNotice(first, PROVIDER);
    await waitFor('a first, failed attempt', () => provider.requests.length >= 1);
    await first.stop({ keepData: true });
    const attemptsBefore = provider.requests.length;

    provider.behave(() => ({ status: 200 }));
    const second = await neuron({ providers: [providerSeed(PROVIDER, provider.url)], dataDir: first.dataDir });
    await waitFor('delivered after the restart', async () => (await row(second, eventId)).status === 'delivered');
    assert.equal(provider.accepted().filter((r) => eventIdOf(r) === eventId).length, 1, 'accepted exactly once');
    assert.ok(provider.requests.length > attemptsBefore);
  });

  test('stopping during a delivery gives the row back, and the next start delivers it', async () => {
    const provider = await receiver(() => 'hang');
    const first = await neuron({ providers: [providerSeed(PROVIDER, provider.url)] });
    const eventId = await enqueueNotice(first, PROVIDER);
    await waitFor('the delivery is in flight', () => provider.requests.length === 1);
    await first.stop({ keepData: true });

    provider.behave(() => ({ status: 200 }));
    const second = await neuron({ providers: [providerSeed(PROVIDER, provider.url)], dataDir: first.dataDir });
    await waitFor('delivered after the restart', async () => (await row(second, eventId)).status === 'delivered');
    // The aborted attempt was not the receiver's fault and is not counted.
    assert.equal((await row(second, eventId)).attempts, 1);
    assert.equal(provider.accepted().length, 1);
  });

  test('after the last attempt a notice is a dead letter; the operator retries it and it is delivered', async () => {
    const provider = await receiver(() => ({ status: 500 }));
    const t = await neuron({ providers: [providerSeed(PROVIDER, provider.url)], outbox: { max_attempts: 3 } });
    const eventId = await enqueueNotice(t, PROVIDER);

    await waitFor('dead after max attempts', async () => (await row(t, eventId)).status === 'dead');
    const dead = await row(t, eventId);
    assert.equal(dead.attempts, 3);
    assert.match(dead.last_error ?? '', /HTTP 500/);
    assert.equal(provider.requests.length, 3);
    assert.equal((await databaseCounts(t.neuron.storage)).outbox['dead'], 1, 'neuron status counts it');

    const admin = await createApiKey(t.neuron, ['admin']);
    const reader = await createApiKey(t.neuron, ['read']);
    const listed = await api(t.url, 'GET', '/v1/outbox/dead', { token: admin });
    assert.equal(listed.status, 200);
    assert.deepEqual(
      listed.body.items.map((i: { event_id: string }) => i.event_id),
      [eventId],
    );
    assert.equal(listed.body.items[0].status, 'dead');
    assert.equal(listed.body.items[0].body, undefined, 'operators do not see the notice body');
    assert.equal((await api(t.url, 'GET', '/v1/outbox/dead', { token: reader })).status, 403);
    assert.equal((await api(t.url, 'POST', `/v1/outbox/${eventId}/retry`, { token: reader })).status, 403);

    provider.behave(() => ({ status: 200 }));
    const retried = await api(t.url, 'POST', `/v1/outbox/${eventId}/retry`, { token: admin });
    assert.equal(retried.status, 200);
    assert.equal(retried.body.status, 'pending');
    assert.equal(retried.body.attempts, 0);
    await waitFor('delivered after the retry', async () => (await row(t, eventId)).status === 'delivered');
    assert.equal(provider.accepted().length, 1);
    assert.equal((await api(t.url, 'POST', `/v1/outbox/${randomUUID()}/retry`, { token: admin })).status, 404);
  });

  test('a hanging provider does not hold up deliveries to another provider', async () => {
    const stuck = await receiver(() => 'hang');
    const healthy = await receiver();
    const t = await neuron({
      providers: [providerSeed(PROVIDER, stuck.url), providerSeed(OTHER_PROVIDER, healthy.url)],
      outbox: { request_timeout_ms: 60_000 },
    });
    const stuckEvent = await enqueueNotice(t, PROVIDER);
    await waitFor('the first delivery hangs', () => stuck.requests.length === 1);
    const second = await enqueueNotice(t, PROVIDER);
    const healthyEvents = [await enqueueNotice(t, OTHER_PROVIDER), await enqueueNotice(t, OTHER_PROVIDER)];

    await waitFor('the other provider gets its notices', () => healthy.accepted().length === 2);
    assert.deepEqual(healthy.accepted().map(eventIdOf).sort(), [...healthyEvents].sort());
    assert.equal((await row(t, stuckEvent)).status, 'pending', 'the hanging delivery is still in flight');
    assert.equal(stuck.requests.length, 1, 'one delivery at a time to the hanging provider');
    assert.equal((await row(t, second)).attempts, 0);
  });

  test('a redirect is not followed and counts as a failed attempt', async () => {
    const elsewhere = await receiver();
    const provider = await receiver(() => ({ status: 302, headers: { location: `${elsewhere.url}/stolen` } }));
    const t = await neuron({ providers: [providerSeed(PROVIDER, provider.url)], outbox: { max_attempts: 2 } });
    const eventId = await enqueueNotice(t, PROVIDER);

    await waitFor('dead after two redirects', async () => (await row(t, eventId)).status === 'dead');
    assert.match((await row(t, eventId)).last_error ?? '', /redirect \(HTTP 302\)/);
    assert.equal(provider.requests.length, 2);
    assert.equal(elsewhere.requests.length, 0, 'the redirect target was never contacted');
  });

  test('a lease left by an instance that died is taken over once it runs out', async () => {
    const provider = await receiver();
    const t = await neuron({ providers: [providerSeed(PROVIDER, provider.url)] });
    const eventId = randomUUID();
    const now = Date.now();
    await t.neuron.storage.db
      .insertInto('outbox')
      .values({
        event_id: eventId,
        kind: 'provider.relationship',
        event_type: 'relationship.established',
        target: PROVIDER,
        body: JSON.stringify({ event_id: eventId }),
        status: 'pending',
        attempts: 1,
        next_attempt_at: isoNow(now - 1_000),
        locked_by: 'an-instance-that-died',
        locked_until: isoNow(now + 400),
        last_error: null,
        created_at: isoNow(now - 1_000),
        delivered_at: null,
      })
      .execute();

    await waitFor('delivered by the surviving instance', async () => (await row(t, eventId)).status === 'delivered');
    assert.equal(provider.accepted().length, 1);
    assert.equal((await row(t, eventId)).attempts, 2);
  });

  test('two instances sharing the database deliver every notice exactly once', async () => {
    // Slow answers keep deliveries in flight while the other instance polls.
    const provider = await receiver(() => ({ status: 200, delayMs: 30 }));
    const slow = await receiver(() => ({ status: 200, delayMs: 60 }));
    const a = await neuron({
      providers: [providerSeed(PROVIDER, provider.url), providerSeed(OTHER_PROVIDER, slow.url)],
      instanceId: 'instance-a',
    });
    const b = await neuron({
      providers: [providerSeed(PROVIDER, provider.url), providerSeed(OTHER_PROVIDER, slow.url)],
      dataDir: a.dataDir,
      instanceId: 'instance-b',
    });
    const events: string[] = [];
    for (let i = 0; i < 10; i++) events.push(await enqueueNotice(i % 2 === 0 ? a : b, i % 3 === 0 ? OTHER_PROVIDER : PROVIDER));

    await waitFor('all delivered', async () => {
      for (const eventId of events) if ((await row(a, eventId)).status !== 'delivered') return false;
      return true;
    });
    const seen = [...provider.requests, ...slow.requests].map(eventIdOf);
    assert.equal(seen.length, events.length, 'no notice was posted twice');
    assert.deepEqual([...seen].sort(), [...events].sort());
  });

  test('webhooks go through the same worker, signed with the subscription secret', async () => {
    const hook = await receiver();
    const t = await neuron({ providers: [] });
    const secret = 'whsec_test_secret_value';
    await t.neuron.storage.db
      .insertInto('webhook_subscriptions')
      .values({
        id: randomUUID(),
        url: `${hook.url}/hook`,
        events: JSON.stringify(['patient.blocked']),
        secret,
        label: 'test',
        created_by: 'cli',
        created_at: isoNow(),
        active: 1,
      })
      .execute();
    await t.neuron.storage.transaction((trx) => publishWebhookEvent(trx, 'patient.blocked', { patient_agent_id: 'p-1' }, isoNow()));

    await waitFor('the webhook arrives', () => hook.accepted().length === 1);
    const received = hook.requests[0]!;
    assert.ok(verifyWebhookSignature(secret, received.body, received.headers['neuron-signature'] as string));
    assert.ok(!verifyWebhookSignature('another-secret', received.body, received.headers['neuron-signature'] as string));
    assert.equal(received.headers['neuron-event-type'], 'patient.blocked');
    assert.equal(JSON.parse(received.body).event_id, eventIdOf(received));
  });
});
