/**
 * /v1/blocks: blocking suspends the agent's active relationships and queues patient.blocked in
 * one transaction; admin scope only; unblocking leaves suspended relationships suspended.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isBlocked } from './store.ts';
import { assertProblem, insertRelationship, startApiNeuron, type ApiTestNeuron } from '../../../test/helpers/api.ts';

describe('/v1/blocks', () => {
  let t: ApiTestNeuron;
  before(async () => {
    t = await startApiNeuron();
  });
  after(async () => {
    await t.checkConformance();
    await t.stop();
  });

  it('blocks an agent: its active relationships are suspended, patient.blocked is queued, the change is audited', async () => {
    const webhook = await t.request('POST', '/v1/webhooks', {
      key: t.keys.admin,
      body: { url: 'http://127.0.0.1:9/front-desk', events: ['patient.blocked'], label: 'front-desk' },
    });
    const one = await insertRelationship(t.neuron, { providerNpi: '1679576722' });
    const two = await insertRelationship(t.neuron, { providerNpi: '1376841239', patientAgentId: one.patientAgentId });
    const other = await insertRelationship(t.neuron);

    const blocked = await t.request('POST', '/v1/blocks', {
      key: t.keys.admin,
      body: { patient_agent_id: one.patientAgentId, reason: 'threatening staff' },
    });
    assert.equal(blocked.status, 201, blocked.text);
    assert.equal(blocked.body.patient_agent_id, one.patientAgentId);
    assert.equal(blocked.body.blocked_by, 'api-key:admin');
    assert.deepEqual([...blocked.body.suspended_relationship_ids].sort(), [one.id, two.id].sort());
    assert.equal(await isBlocked(t.neuron.storage.db, one.patientAgentId), true);

    for (const id of [one.id, two.id]) {
      const r = await t.request('GET', `/v1/relationships/${id}`, { key: t.keys.read });
      assert.equal(r.body.status, 'suspended');
    }
    assert.equal((await t.request('GET', `/v1/relationships/${other.id}`, { key: t.keys.read })).body.status, 'active');

    const queued = await t.neuron.storage.db.selectFrom('outbox').selectAll().where('target', '=', webhook.body.id).execute();
    assert.equal(queued.length, 1);
    const event = JSON.parse(queued[0]!.body) as { type: string; data: Record<string, unknown> };
    assert.equal(event.type, 'patient.blocked');
    assert.equal(event.data['patient_agent_id'], one.patientAgentId);
    const audit = await t.neuron.storage.db.selectFrom('audit_log').selectAll().where('event_type', '=', 'patient.blocked').execute();
    assert.ok(audit.some((e) => e.actor === 'api-key:admin' && e.details.includes(one.patientAgentId)));

    assertProblem(
      await t.request('POST', '/v1/blocks', { key: t.keys.admin, body: { patient_agent_id: one.patientAgentId, reason: 'again' } }),
      409,
      'CONFLICT',
    );
    await t.request('DELETE', `/v1/webhooks/${webhook.body.id}`, { key: t.keys.admin });
  });

  it('blocks an agent id never seen before, lists blocks paged, and unblocks without resuming anything', async () => {
    const r = await insertRelationship(t.neuron);
    await t.request('POST', '/v1/blocks', { key: t.keys.admin, body: { patient_agent_id: r.patientAgentId, reason: 'r1' } });
    const fresh = await t.request('POST', '/v1/blocks', {
      key: t.keys.admin,
      body: { patient_agent_id: 'did:example:never-connected', reason: 'pre-emptive' },
    });
    assert.equal(fresh.status, 201);
    assert.deepEqual(fresh.body.suspended_relationship_ids, []);

    const first = await t.request('GET', '/v1/blocks?limit=1', { key: t.keys.admin });
    assert.equal(first.status, 200);
    assert.equal(first.body.items.length, 1);
    assert.ok(first.body.next);
    const all = await t.request('GET', '/v1/blocks?limit=200', { key: t.keys.admin });
    assert.ok(all.body.items.some((b: { patient_agent_id: string }) => b.patient_agent_id === 'did:example:never-connected'));

    const removed = await t.request('DELETE', `/v1/blocks/${encodeURIComponent(r.patientAgentId)}`, { key: t.keys.admin });
    assert.equal(removed.status, 204);
    assert.equal(await isBlocked(t.neuron.storage.db, r.patientAgentId), false);
    assert.equal((await t.request('GET', `/v1/relationships/${r.id}`, { key: t.keys.read })).body.status, 'suspended');
    assertProblem(await t.request('DELETE', `/v1/blocks/${encodeURIComponent(r.patientAgentId)}`, { key: t.keys.admin }), 404, 'NOT_FOUND');
    const audit = await t.neuron.storage.db.selectFrom('audit_log').selectAll().where('event_type', '=', 'patient.unblocked').execute();
    assert.ok(audit.some((e) => e.actor === 'api-key:admin' && e.details.includes(r.patientAgentId)));
  });

  it('lists with read, changes with write (a front-desk action), and needs valid input', async () => {
    assert.equal((await t.request('GET', '/v1/blocks', { key: t.keys.read })).status, 200);
    assertProblem(
      await t.request('POST', '/v1/blocks', { key: t.keys.read, body: { patient_agent_id: 'did:example:x', reason: 'r' } }),
      403,
      'FORBIDDEN',
    );
    assertProblem(await t.request('DELETE', '/v1/blocks/did%3Aexample%3Ax', { key: t.keys.read }), 403, 'FORBIDDEN');
    assert.equal(
      (await t.request('POST', '/v1/blocks', { key: t.keys.write, body: { patient_agent_id: 'did:example:by-writer', reason: 'r' } }))
        .status,
      201,
    );
    assert.equal((await t.request('DELETE', '/v1/blocks/did%3Aexample%3Aby-writer', { key: t.keys.write })).status, 204);
    assertProblem(
      await t.request('POST', '/v1/blocks', { body: { patient_agent_id: 'did:example:x', reason: 'r' } }),
      401,
      'UNAUTHENTICATED',
    );
    const cases: Array<[unknown, string]> = [
      [{ reason: 'r' }, 'body.patient_agent_id'],
      [{ patient_agent_id: 'has space', reason: 'r' }, 'body.patient_agent_id'],
      [{ patient_agent_id: 'did:example:x' }, 'body.reason'],
      [{ patient_agent_id: 'did:example:x', reason: 'r', until: '2030-01-01' }, 'body.until'],
    ];
    for (const [body, field] of cases) {
      const response = await t.request('POST', '/v1/blocks', { key: t.keys.admin, body });
      assertProblem(response, 400, 'VALIDATION_FAILED');
      assert.ok(
        response.body.errors.some((e: { path: string }) => e.path === field),
        `${field}: ${response.text}`,
      );
    }
    assert.equal(await isBlocked(t.neuron.storage.db, 'did:example:x'), false);
  });
});
