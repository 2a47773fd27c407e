/**
 * /v1/organization and /v1/status.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isoNow } from '../../foundation/storage/index.ts';
import { publishWebhookEvent } from '../webhooks/events.ts';
import { NEURON_VERSION } from '../../main.ts';
import { assertProblem, startApiNeuron, type ApiTestNeuron } from '../../../test/helpers/api.ts';

describe('/v1/organization and /v1/status', () => {
  let t: ApiTestNeuron;
  before(async () => {
    t = await startApiNeuron();
  });
  after(async () => {
    await t.checkConformance();
    await t.stop();
  });

  it('describes the organization: name, NPI, type, handshake URL, registry state and public key', async () => {
    const response = await t.request('GET', '/v1/organization', { key: t.keys.read });
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, {
      name: 'Test Practice',
      npi: '1245319599',
      type: 'practice',
      handshake_url: t.neuron.address().handshakeUrl,
      public_key: t.neuron.organizationKey.publicKey,
      registry: { state: 'disabled', registered: false, last_heartbeat_at: null },
    });
    assert.match(response.body.handshake_url, /^ws:\/\/127\.0\.0\.1:\d+\/ws\/handshake$/);
    assertProblem(await t.request('GET', '/v1/organization'), 401, 'UNAUTHENTICATED');
  });

  it('reports version, uptime, handshake load, registry and the outbox backlog', async () => {
    const subscription = await t.request('POST', '/v1/webhooks', {
      key: t.keys.admin,
      body: { url: 'http://127.0.0.1:9/status', events: ['patient.blocked'], label: 'status' },
    });
    assert.equal(subscription.status, 201);
    // Held for a minute so the worker does not change its state during the test.
    await t.neuron.storage.transaction((trx) =>
      publishWebhookEvent(trx, 'patient.blocked', { patient_agent_id: 'did:example:s' }, isoNow(Date.now() + 60_000)),
    );

    const response = await t.request('GET', '/v1/status', { key: t.keys.read });
    assert.equal(response.status, 200);
    assert.equal(response.body.version, NEURON_VERSION);
    assert.ok(response.body.uptime_seconds >= 0);
    assert.ok(Date.parse(response.body.started_at) <= Date.now());
    assert.deepEqual(response.body.handshakes, { active: 0, queued: 0 });
    assert.equal(response.body.registry.state, 'disabled');
    assert.ok(response.body.outbox.pending >= 1);
    assert.ok(response.body.outbox.oldest_pending_at);
    assertProblem(await t.request('GET', '/v1/status'), 401, 'UNAUTHENTICATED');
    assertProblem(await t.request('GET', '/v1/status?verbose=1', { key: t.keys.read }), 400, 'VALIDATION_FAILED');
  });
});
