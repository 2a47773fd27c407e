/**
 * /v1/relationships: listing with filters and stable pagination, reading one, and the
 * organization-side changes (suspend, resume, terminate) with their audit entries and webhooks.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isoNow } from '../../foundation/storage/index.ts';
import { assertProblem, insertRelationship, startApiNeuron, type ApiTestNeuron } from '../../../test/helpers/api.ts';

describe('/v1/relationships', () => {
  let t: ApiTestNeuron;
  before(async () => {
    t = await startApiNeuron();
  });
  after(async () => {
    await t.checkConformance();
    await t.stop();
  });

  it('lists relationships with filters, in order of establishment', async () => {
    const base = Date.parse('2030-01-01T00:00:00.000Z');
    const a = await insertRelationship(t.neuron, { providerNpi: '1376841239', establishedAt: isoNow(base) });
    const b = await insertRelationship(t.neuron, { providerNpi: '1376841239', establishedAt: isoNow(base + 1_000) });
    const c = await insertRelationship(t.neuron, { providerNpi: '1003000126', establishedAt: isoNow(base + 2_000), status: 'suspended' });

    const byProvider = await t.request('GET', '/v1/relationships?provider_npi=1376841239', { key: t.keys.read });
    assert.equal(byProvider.status, 200);
    assert.deepEqual(
      byProvider.body.items.map((r: { id: string }) => r.id),
      [a.id, b.id],
    );
    assert.equal(byProvider.body.next, null);
    const item = byProvider.body.items[0];
    assert.equal(item.patient_agent_id, a.patientAgentId);
    assert.equal(item.status, 'active');
    assert.deepEqual(item.consented_actions, ['appointments.read']);
    assert.equal('consent_token_payload' in item, false, 'the token itself is not exposed');

    const byPatient = await t.request('GET', `/v1/relationships?patient_agent_id=${encodeURIComponent(b.patientAgentId)}`, {
      key: t.keys.read,
    });
    assert.deepEqual(
      byPatient.body.items.map((r: { id: string }) => r.id),
      [b.id],
    );

    const suspended = await t.request('GET', '/v1/relationships?status=suspended&established_from=2030-01-01T00:00:00Z', {
      key: t.keys.read,
    });
    assert.deepEqual(
      suspended.body.items.map((r: { id: string }) => r.id),
      [c.id],
    );

    // Times with an offset or without milliseconds compare as instants.
    const window = await t.request(
      'GET',
      `/v1/relationships?established_from=${encodeURIComponent('2030-01-01T01:00:01+01:00')}&established_to=2030-01-01T00:00:02Z`,
      { key: t.keys.read },
    );
    assert.deepEqual(
      window.body.items.map((r: { id: string }) => r.id),
      [b.id],
    );

    assertProblem(await t.request('GET', '/v1/relationships?status=ended', { key: t.keys.read }), 400, 'VALIDATION_FAILED');
    assertProblem(await t.request('GET', '/v1/relationships?established_from=yesterday', { key: t.keys.read }), 400, 'VALIDATION_FAILED');
    assertProblem(await t.request('GET', '/v1/relationships'), 401, 'UNAUTHENTICATED');
  });

  it('pages stably while relationships are inserted', async () => {
    const npi = '1234567893';
    const base = Date.parse('2031-01-01T00:00:00.000Z');
    const original = [];
    for (let i = 0; i < 7; i += 1)
      original.push(await insertRelationship(t.neuron, { providerNpi: npi, establishedAt: isoNow(base + i * 1_000) }));
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const page: any = await t.request('GET', `/v1/relationships?provider_npi=${npi}&limit=2${after ? `&after=${after}` : ''}`, {
        key: t.keys.read,
      });
      assert.equal(page.status, 200);
      assert.ok(page.body.items.length <= 2);
      seen.push(...page.body.items.map((r: { id: string }) => r.id));
      after = page.body.next;
      pages += 1;
      // Inserted between pages: one before everything seen so far, one after everything.
      if (pages === 1) {
        await insertRelationship(t.neuron, { providerNpi: npi, establishedAt: isoNow(base - 10_000) });
        await insertRelationship(t.neuron, { providerNpi: npi, establishedAt: isoNow(base + 1_500) });
      }
    } while (after !== null && pages < 20);
    assert.equal(new Set(seen).size, seen.length, 'no item twice');
    for (const r of original) assert.ok(seen.includes(r.id), 'no item skipped');
    const positions = original.map((r) => seen.indexOf(r.id));
    assert.deepEqual(
      positions,
      [...positions].sort((x, y) => x - y),
      'still in order',
    );
  });

  it('gets one relationship; 404 for an unknown id, 400 for a malformed one, 401 without a key', async () => {
    const r = await insertRelationship(t.neuron);
    const found = await t.request('GET', `/v1/relationships/${r.id}`, { key: t.keys.read });
    assert.equal(found.status, 200);
    assert.equal(found.body.id, r.id);
    assertProblem(await t.request('GET', '/v1/relationships/00000000-0000-4000-8000-000000000000', { key: t.keys.read }), 404, 'NOT_FOUND');
    assertProblem(await t.request('GET', '/v1/relationships/not%20an%20id', { key: t.keys.read }), 400, 'VALIDATION_FAILED');
    assertProblem(await t.request('GET', `/v1/relationships/${r.id}`), 401, 'UNAUTHENTICATED');
  });

  it('suspends and resumes, audited with the key as actor', async () => {
    const r = await insertRelationship(t.neuron);
    const suspended = await t.request('POST', `/v1/relationships/${r.id}/suspend`, {
      key: t.keys.write,
      body: { reason: 'billing dispute' },
    });
    assert.equal(suspended.status, 200, suspended.text);
    assert.equal(suspended.body.status, 'suspended');
    assert.equal(suspended.body.status_reason, 'billing dispute');
    assertProblem(
      await t.request('POST', `/v1/relationships/${r.id}/suspend`, { key: t.keys.write, body: { reason: 'again' } }),
      409,
      'CONFLICT',
    );

    const resumed = await t.request('POST', `/v1/relationships/${r.id}/resume`, { key: t.keys.write, body: { reason: 'settled' } });
    assert.equal(resumed.status, 200);
    assert.equal(resumed.body.status, 'active');
    assertProblem(
      await t.request('POST', `/v1/relationships/${r.id}/resume`, { key: t.keys.write, body: { reason: 'again' } }),
      409,
      'CONFLICT',
    );

    const events = await t.neuron.storage.db
      .selectFrom('audit_log')
      .selectAll()
      .where('event_type', 'in', ['relationship.suspended', 'relationship.resumed'])
      .orderBy('seq')
      .execute();
    const mine = events.filter((e) => (JSON.parse(e.details) as { relationship_id: string }).relationship_id === r.id);
    assert.deepEqual(
      mine.map((e) => [e.event_type, e.actor]),
      [
        ['relationship.suspended', 'api-key:writer'],
        ['relationship.resumed', 'api-key:writer'],
      ],
    );
    assert.equal((JSON.parse(mine[0]!.details) as { reason: string }).reason, 'billing dispute');
  });

  it('terminates for good: 410 on any later change, and publishes relationship.terminated', async () => {
    const webhook = await t.request('POST', '/v1/webhooks', {
      key: t.keys.admin,
      body: { url: 'http://127.0.0.1:9/booking', events: ['relationship.terminated'], label: 'booking' },
    });
    assert.equal(webhook.status, 201, webhook.text);
    const r = await insertRelationship(t.neuron);
    const terminated = await t.request('POST', `/v1/relationships/${r.id}/terminate`, {
      key: t.keys.write,
      body: { reason: 'patient moved away' },
    });
    assert.equal(terminated.status, 200);
    assert.equal(terminated.body.status, 'terminated');
    for (const action of ['suspend', 'resume', 'terminate']) {
      assertProblem(
        await t.request('POST', `/v1/relationships/${r.id}/${action}`, { key: t.keys.write, body: { reason: 'no' } }),
        410,
        'RELATIONSHIP_TERMINATED',
      );
    }
    const rows = await t.neuron.storage.db
      .selectFrom('outbox')
      .selectAll()
      .where('kind', '=', 'webhook')
      .where('target', '=', webhook.body.id)
      .execute();
    const bodies = rows.map((row) => JSON.parse(row.body) as { type: string; data: { relationship_id: string; reason: string } });
    const event = bodies.find((b) => b.data.relationship_id === r.id);
    assert.ok(event, 'webhook queued in the same transaction');
    assert.equal(event.type, 'relationship.terminated');
    assert.equal(event.data.reason, 'patient moved away');
    const audit = await t.neuron.storage.db
      .selectFrom('audit_log')
      .selectAll()
      .where('event_type', '=', 'relationship.terminated')
      .execute();
    assert.ok(audit.some((e) => e.actor === 'api-key:writer' && e.details.includes(r.id)));
    await t.request('DELETE', `/v1/webhooks/${webhook.body.id}`, { key: t.keys.admin });
  });

  it('will not resume a relationship of a blocked patient, or beside another active one', async () => {
    const blocked = await insertRelationship(t.neuron);
    const block = await t.request('POST', '/v1/blocks', {
      key: t.keys.admin,
      body: { patient_agent_id: blocked.patientAgentId, reason: 'abusive messages' },
    });
    assert.equal(block.status, 201);
    const refused = await t.request('POST', `/v1/relationships/${blocked.id}/resume`, { key: t.keys.write, body: { reason: 'try' } });
    assertProblem(refused, 409, 'CONFLICT');
    assert.match(refused.body.detail, /blocked/);

    const first = await insertRelationship(t.neuron, { providerNpi: '1649218926' });
    await t.request('POST', `/v1/relationships/${first.id}/suspend`, { key: t.keys.write, body: { reason: 'pause' } });
    await insertRelationship(t.neuron, { providerNpi: '1649218926', patientAgentId: first.patientAgentId });
    const clash = await t.request('POST', `/v1/relationships/${first.id}/resume`, { key: t.keys.write, body: { reason: 'back' } });
    assertProblem(clash, 409, 'CONFLICT');
    const still = await t.request('GET', `/v1/relationships/${first.id}`, { key: t.keys.read });
    assert.equal(still.body.status, 'suspended');
  });

  it('refuses changes without a reason, with a read key, or for an unknown relationship', async () => {
    const r = await insertRelationship(t.neuron);
    const noReason = await t.request('POST', `/v1/relationships/${r.id}/suspend`, { key: t.keys.write, body: {} });
    assertProblem(noReason, 400, 'VALIDATION_FAILED');
    assert.deepEqual(
      noReason.body.errors.map((e: { path: string }) => e.path),
      ['body.reason'],
    );
    assertProblem(
      await t.request('POST', `/v1/relationships/${r.id}/suspend`, { key: t.keys.write, body: { reason: '' } }),
      400,
      'VALIDATION_FAILED',
    );
    assertProblem(
      await t.request('POST', `/v1/relationships/${r.id}/suspend`, { key: t.keys.read, body: { reason: 'x' } }),
      403,
      'FORBIDDEN',
    );
    assertProblem(await t.request('POST', `/v1/relationships/${r.id}/suspend`, { body: { reason: 'x' } }), 401, 'UNAUTHENTICATED');
    assertProblem(
      await t.request('POST', '/v1/relationships/00000000-0000-4000-8000-000000000000/terminate', {
        key: t.keys.write,
        body: { reason: 'x' },
      }),
      404,
      'NOT_FOUND',
    );
    const unchanged = await t.request('GET', `/v1/relationships/${r.id}`, { key: t.keys.read });
    assert.equal(unchanged.body.status, 'active');
  });
});
