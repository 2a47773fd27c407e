/**
 * /v1/audit: paging through the log and verifying it over the API.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { assertProblem, insertRelationship, startApiNeuron, type ApiTestNeuron } from '../../test/helpers/api.ts';

describe('/v1/audit', () => {
  let t: ApiTestNeuron;
  before(async () => {
    t = await startApiNeuron();
  });
  after(async () => {
    await t.checkConformance();
    await t.stop();
  });

  it('pages through every entry in order, with filters', async () => {
    for (let i = 0; i < 3; i += 1) {
      const r = await insertRelationship(t.neuron);
      await t.request('POST', `/v1/relationships/${r.id}/suspend`, { key: t.keys.write, body: { reason: `r${i}` } });
    }
    const seqs: number[] = [];
    let after: string | null = null;
    do {
      const page: any = await t.request('GET', `/v1/audit/events?limit=2${after ? `&after=${after}` : ''}`, { key: t.keys.read });
      assert.equal(page.status, 200);
      seqs.push(...page.body.items.map((e: { seq: number }) => e.seq));
      after = page.body.next;
    } while (after !== null);
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'every entry once, in order');

    const filtered = await t.request('GET', '/v1/audit/events?event_type=relationship.suspended', { key: t.keys.read });
    assert.equal(filtered.body.items.length, 3);
    const entry = filtered.body.items[0];
    assert.equal(entry.actor, 'api-key:writer');
    assert.equal(typeof entry.details, 'object');
    assert.match(entry.hash, /^[0-9a-f]{64}$/);

    assertProblem(await t.request('GET', '/v1/audit/events?event_type=DROP%20TABLE', { key: t.keys.read }), 400, 'VALIDATION_FAILED');
    const foreign = Buffer.from(JSON.stringify(['2030-01-01T00:00:00.000Z', 'x'])).toString('base64url');
    assertProblem(await t.request('GET', `/v1/audit/events?after=${foreign}`, { key: t.keys.read }), 400, 'INVALID_CURSOR');
    assertProblem(await t.request('GET', '/v1/audit/events'), 401, 'UNAUTHENTICATED');
  });

  it('verifies the chain, and finds an altered entry', async () => {
    const good = await t.request('POST', '/v1/audit/verify', { key: t.keys.read });
    assert.equal(good.status, 200);
    assert.equal(good.body.ok, true);
    assert.ok(good.body.entries > 0);
    assert.equal(good.body.first_bad_seq, null);
    assertProblem(await t.request('POST', '/v1/audit/verify'), 401, 'UNAUTHENTICATED');

    await t.neuron.storage.db.updateTable('audit_log').set({ actor: 'someone-else' }).where('seq', '=', 2).execute();
    const bad = await t.request('POST', '/v1/audit/verify', { key: t.keys.read });
    assert.equal(bad.status, 200);
    assert.equal(bad.body.ok, false);
    assert.equal(bad.body.first_bad_seq, 2);
    assert.match(bad.body.problem, /changed/);
  });
});
