/**
 * POST /v1/patients/search: the directory search with its term in the body, over real sockets,
 * for API keys and console sessions alike.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startApiNeuron, assertProblem, insertRelationship, type ApiTestNeuron } from '../../../test/helpers/api.ts';

describe('POST /v1/patients/search', () => {
  let t: ApiTestNeuron;
  before(async () => {
    t = await startApiNeuron();
    await insertRelationship(t.neuron, { patientAgentId: 'did:example:search-ada', profile: { display_name: 'Ada Lovelace' } });
    await insertRelationship(t.neuron, { patientAgentId: 'did:example:search-grace', profile: { display_name: 'Grace Hopper' } });
    await insertRelationship(t.neuron, { patientAgentId: 'did:example:search-lovelace-2', profile: null });
  });
  after(async () => {
    await t.checkConformance();
    await t.stop();
  });

  it('matches the display name or the agent id, case-insensitively, with the same answer as GET /v1/patients', async () => {
    const found = await t.request('POST', '/v1/patients/search', { key: t.keys.read, body: { query: 'LOVELACE' } });
    assert.equal(found.status, 200, found.text);
    assert.deepEqual(
      found.body.items.map((p: { patient_agent_id: string }) => p.patient_agent_id),
      ['did:example:search-ada', 'did:example:search-lovelace-2'],
    );
    const viaGet = await t.request('GET', '/v1/patients?search=LOVELACE', { key: t.keys.read });
    assert.deepEqual(found.body, viaGet.body);
  });

  it('pages with limit and cursor', async () => {
    const first = await t.request('POST', '/v1/patients/search', { key: t.keys.read, body: { query: 'search', limit: 2 } });
    assert.equal(first.status, 200, first.text);
    assert.equal(first.body.items.length, 2);
    assert.ok(typeof first.body.next === 'string');
    const second = await t.request('POST', '/v1/patients/search', {
      key: t.keys.read,
      body: { query: 'search', limit: 2, cursor: first.body.next },
    });
    assert.deepEqual(
      second.body.items.map((p: { patient_agent_id: string }) => p.patient_agent_id),
      ['did:example:search-lovelace-2'],
    );
    assert.equal(second.body.next, null);
  });

  it('refuses bad bodies and keys without the read scope', async () => {
    assertProblem(
      await t.request('POST', '/v1/patients/search', { key: t.keys.read, body: { query: 'x', extra: 1 } }),
      400,
      'VALIDATION_FAILED',
    );
    assertProblem(await t.request('POST', '/v1/patients/search', { key: t.keys.read, body: { query: 42 } }), 400, 'VALIDATION_FAILED');
    assertProblem(
      await t.request('POST', '/v1/patients/search', { key: t.keys.read, body: { query: 'x'.repeat(101) } }),
      400,
      'VALIDATION_FAILED',
    );
    assertProblem(
      await t.request('POST', '/v1/patients/search', { key: t.keys.read, body: { query: 'x', cursor: 'bm90LWEtY3Vyc29y' } }),
      400,
      'INVALID_CURSOR',
    );
    assertProblem(await t.request('POST', '/v1/patients/search', { body: { query: 'x' } }), 401, 'UNAUTHENTICATED');
  });
});
