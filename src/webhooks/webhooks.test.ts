/**
 * /v1/webhooks: subscriptions (admin scope), the secret shown once, and a real delivery to an
 * HTTP server on 127.0.0.1 whose signature is checked the way docs/api.md tells receivers to.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { assertProblem, insertRelationship, startApiNeuron, type ApiTestNeuron } from '../api/test-support.ts';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A receiver on 127.0.0.1 that records every POST and answers 204. */
async function startReceiver(): Promise<{ url: string; received: Received[]; waitFor: (count: number) => Promise<void>; close: () => Promise<void> }> {
  const received: Received[] = [];
  const waiters: Array<() => void> = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({ headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
      response.writeHead(204).end();
      waiters.splice(0).forEach((wake) => wake());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/hooks/neuron`,
    received,
    async waitFor(count) {
      const deadline = Date.now() + 15_000;
      while (received.length < count) {
        if (Date.now() > deadline) throw new Error(`only ${received.length} of ${count} deliveries arrived`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 200).unref();
        });
      }
    },
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/** What docs/api.md tells a receiver to do: HMAC-SHA256 of the raw body with the secret, constant-time compare. */
function verifySignature(secret: string, rawBody: string, header: string | undefined): boolean {
  if (header === undefined || !header.startsWith('hmac-sha256=')) return false;
  const expected = createHmac('sha256', secret).update(rawBody).digest();
  const presented = Buffer.from(header.slice('hmac-sha256='.length), 'hex');
  return presented.length === expected.length && timingSafeEqual(presented, expected);
}

describe('/v1/webhooks', () => {
  let t: ApiTestNeuron;
  before(async () => {
    t = await startApiNeuron({ config: { outbox: { poll_interval_ms: 50 } } });
  });
  after(async () => {
    await t.checkConformance();
    await t.stop();
  });

  it('delivers a signed relationship.terminated event to a real receiver', async () => {
    const receiver = await startReceiver();
    try {
      const created = await t.request('POST', '/v1/webhooks', { key: t.keys.admin, body: { url: receiver.url, events: ['relationship.terminated', 'patient.blocked'], label: 'booking-app' } });
      assert.equal(created.status, 201, created.text);
      const secret = created.body.secret as string;
      assert.match(secret, /^whsec_[A-Za-z0-9_-]{43}$/);

      const r = await insertRelationship(t.neuron);
      const terminated = await t.request('POST', `/v1/relationships/${r.id}/terminate`, { key: t.keys.write, body: { reason: 'patient request' } });
      assert.equal(terminated.status, 200);

      await receiver.waitFor(1);
      const delivery = receiver.received[0]!;
      assert.equal(verifySignature(secret, delivery.body, delivery.headers['neuron-signature'] as string), true, 'signature verifies');
      assert.equal(verifySignature('whsec_wrong', delivery.body, delivery.headers['neuron-signature'] as string), false);
      assert.equal(verifySignature(secret, `${delivery.body} `, delivery.headers['neuron-signature'] as string), false, 'any change to the body breaks it');
      const event = JSON.parse(delivery.body) as { event_id: string; type: string; occurred_at: string; data: Record<string, unknown> };
      assert.equal(event.type, 'relationship.terminated');
      assert.equal(delivery.headers['neuron-event-type'], 'relationship.terminated');
      assert.equal(delivery.headers['neuron-event-id'], event.event_id);
      assert.deepEqual(event.data, {
        relationship_id: r.id,
        patient_agent_id: r.patientAgentId,
        provider_npi: r.providerNpi,
        reason: 'patient request',
        terminated_at: event.occurred_at,
      });
      assert.match(String(delivery.headers['content-type']), /^application\/json/);
    } finally {
      await receiver.close();
    }
  });

  it('creates, lists, gets and deletes subscriptions; the secret is never shown again', async () => {
    const created = await t.request('POST', '/v1/webhooks', { key: t.keys.admin, body: { url: 'http://127.0.0.1:9/billing', events: ['patient.blocked'], label: 'billing' } });
    assert.equal(created.status, 201);
    const id = created.body.id as string;
    const one = await t.request('GET', `/v1/webhooks/${id}`, { key: t.keys.admin });
    assert.equal(one.status, 200);
    assert.equal(one.body.created_by, 'api-key:admin');
    assert.equal('secret' in one.body, false);
    const listed = await t.request('GET', '/v1/webhooks?limit=1', { key: t.keys.admin });
    assert.equal(listed.status, 200);
    assert.equal(listed.body.items.length, 1);
    const all = await t.request('GET', '/v1/webhooks?limit=200', { key: t.keys.admin });
    assert.ok(all.body.items.some((w: { id: string }) => w.id === id));
    assert.ok(!all.text.includes(created.body.secret));

    assert.equal((await t.request('DELETE', `/v1/webhooks/${id}`, { key: t.keys.admin })).status, 204);
    assertProblem(await t.request('GET', `/v1/webhooks/${id}`, { key: t.keys.admin }), 404, 'NOT_FOUND');
    assertProblem(await t.request('DELETE', `/v1/webhooks/${id}`, { key: t.keys.admin }), 404, 'NOT_FOUND');
    const audit = await t.neuron.storage.db.selectFrom('audit_log').select(['event_type', 'actor', 'details']).where('event_type', 'in', ['webhook.created', 'webhook.deleted']).execute();
    assert.deepEqual(audit.filter((e) => e.details.includes(id)).map((e) => [e.event_type, e.actor]), [['webhook.created', 'api-key:admin'], ['webhook.deleted', 'api-key:admin']]);
    assert.ok(audit.every((e) => !e.details.includes('whsec_')), 'the secret is not audited');
  });

  it('refuses bad subscriptions with 400 naming the field, and non-admin keys', async () => {
    const cases: Array<[unknown, string]> = [
      [{ url: 'ftp://x.example', events: ['patient.blocked'], label: 'x' }, 'body.url'],
      [{ url: 'https://user:pass@x.example/', events: ['patient.blocked'], label: 'x' }, 'body.url'],
      [{ url: 'https://x.example/', events: ['patient.created'], label: 'x' }, 'body.events.0'],
      [{ url: 'https://x.example/', events: [], label: 'x' }, 'body.events'],
      [{ url: 'https://x.example/', events: ['patient.blocked', 'patient.blocked'], label: 'x' }, 'body.events'],
      [{ url: 'https://x.example/', events: ['patient.blocked'] }, 'body.label'],
      [{ url: 'https://x.example/', events: ['patient.blocked'], label: 'x', secret: 'mine' }, 'body.secret'],
    ];
    for (const [body, field] of cases) {
      const response = await t.request('POST', '/v1/webhooks', { key: t.keys.admin, body });
      assertProblem(response, 400, 'VALIDATION_FAILED');
      assert.ok(response.body.errors.some((e: { path: string }) => e.path === field), `${field}: ${response.text}`);
      assert.ok(!response.text.includes('pass@'), 'credentials are not echoed');
    }
    assertProblem(await t.request('GET', '/v1/webhooks/not-a-uuid', { key: t.keys.admin }), 400, 'VALIDATION_FAILED');
    assertProblem(await t.request('GET', '/v1/webhooks/00000000-0000-4000-8000-000000000000', { key: t.keys.admin }), 404, 'NOT_FOUND');
    for (const key of [t.keys.read, t.keys.write]) {
      assertProblem(await t.request('GET', '/v1/webhooks', { key }), 403, 'FORBIDDEN');
      assertProblem(await t.request('POST', '/v1/webhooks', { key, body: { url: 'https://x.example/', events: ['patient.blocked'], label: 'x' } }), 403, 'FORBIDDEN');
    }
    assertProblem(await t.request('GET', '/v1/webhooks'), 401, 'UNAUTHENTICATED');
  });
});
