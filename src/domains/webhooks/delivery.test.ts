/**
 * Webhook delivery end to end: a subscription made through the API, an API change that publishes
 * an event, the outbox worker posting it to a real HTTP server on 127.0.0.1, and the signature
 * checked the way docs/api.md tells receivers to.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { insertRelationship, startApiNeuron, type ApiTestNeuron } from '../../../test/helpers/api.ts';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A receiver on 127.0.0.1 that records every POST and answers 204. */
async function startReceiver(): Promise<{
  url: string;
  received: Received[];
  waitFor: (count: number) => Promise<void>;
  close: () => Promise<void>;
}> {
  const received: Received[] = [];
  const waiters: Array<() => void> = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({ headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
      response.writeHead(204).end();
      for (const wake of waiters.splice(0)) wake();
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
    close: () =>
      new Promise<void>((resolve) => {
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

describe('webhook delivery', () => {
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
      const created = await t.request('POST', '/v1/webhooks', {
        key: t.keys.admin,
        body: { url: receiver.url, events: ['relationship.terminated', 'patient.blocked'], label: 'booking-app' },
      });
      assert.equal(created.status, 201, created.text);
      const secret = created.body.secret as string;
      assert.match(secret, /^whsec_[A-Za-z0-9_-]{43}$/);

      const r = await insertRelationship(t.neuron);
      const terminated = await t.request('POST', `/v1/relationships/${r.id}/terminate`, {
        key: t.keys.write,
        body: { reason: 'patient request' },
      });
      assert.equal(terminated.status, 200);

      await receiver.waitFor(1);
      const delivery = receiver.received[0]!;
      assert.equal(verifySignature(secret, delivery.body, delivery.headers['neuron-signature'] as string), true, 'signature verifies');
      assert.equal(verifySignature('whsec_wrong', delivery.body, delivery.headers['neuron-signature'] as string), false);
      assert.equal(
        verifySignature(secret, `${delivery.body} `, delivery.headers['neuron-signature'] as string),
        false,
        'any change to the body breaks it',
      );
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
});
