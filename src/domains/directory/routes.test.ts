/**
 * /v1/patients: search, read, front-desk profile edits (merge patch) and deletion that keeps the
 * relationship and the audit trail.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { assertProblem, insertRelationship, startApiNeuron, type ApiTestNeuron } from '../../../test/helpers/api.ts';

describe('/v1/patients', () => {
  let t: ApiTestNeuron;
  before(async () => {
    t = await startApiNeuron();
  });
  after(async () => {
    await t.checkConformance();
    await t.stop();
  });

  const path = (id: string): string => `/v1/patients/${encodeURIComponent(id)}`;

  it('searches by agent id or display name, paged', async () => {
    const ada = await insertRelationship(t.neuron, {
      patientAgentId: 'did:example:zz-ada',
      profile: { display_name: 'Ada Lovelace', preferred_language: 'en-GB' },
    });
    await insertRelationship(t.neuron, { patientAgentId: 'did:example:zz-grace', profile: { display_name: 'Grace Hopper' } });
    await insertRelationship(t.neuron, { patientAgentId: 'did:example:zz-alan', profile: null });

    const byName = await t.request('GET', '/v1/patients?search=LOVELACE', { key: t.keys.read });
    assert.equal(byName.status, 200);
    assert.deepEqual(
      byName.body.items.map((p: { patient_agent_id: string }) => p.patient_agent_id),
      [ada.patientAgentId],
    );
    assert.deepEqual(byName.body.items[0].profile, { display_name: 'Ada Lovelace', preferred_language: 'en-GB' });

    const first = await t.request('GET', '/v1/patients?search=zz-&limit=2', { key: t.keys.read });
    assert.equal(first.body.items.length, 2);
    assert.ok(first.body.next);
    const second = await t.request('GET', `/v1/patients?search=zz-&limit=2&after=${first.body.next}`, { key: t.keys.read });
    assert.equal(second.body.items.length, 1);
    assert.equal(second.body.next, null);

    const wildcard = await t.request('GET', '/v1/patients?search=%25', { key: t.keys.read });
    assert.deepEqual(wildcard.body.items, [], 'LIKE wildcards are matched literally');
    assertProblem(await t.request('GET', `/v1/patients?search=${'x'.repeat(101)}`, { key: t.keys.read }), 400, 'VALIDATION_FAILED');
    assertProblem(await t.request('GET', '/v1/patients'), 401, 'UNAUTHENTICATED');
  });

  it('gets one entry; 404 when unknown', async () => {
    const r = await insertRelationship(t.neuron, { profile: { display_name: 'Katherine Johnson' } });
    const found = await t.request('GET', path(r.patientAgentId), { key: t.keys.read });
    assert.equal(found.status, 200);
    assert.equal(found.body.patient_agent_id, r.patientAgentId);
    assert.equal(found.body.profile.display_name, 'Katherine Johnson');
    assertProblem(await t.request('GET', path('did:example:nobody'), { key: t.keys.read }), 404, 'NOT_FOUND');
  });

  it('tells a caller without a valid key nothing about whether an agent id exists', async () => {
    const r = await insertRelationship(t.neuron);
    const known = await t.request('GET', path(r.patientAgentId));
    const unknown = await t.request('GET', path('did:example:nobody'));
    assertProblem(known, 401, 'UNAUTHENTICATED');
    assertProblem(unknown, 401, 'UNAUTHENTICATED');
    assert.equal(known.body.detail, unknown.body.detail);
    const knownBad = await t.request('PATCH', `${path(r.patientAgentId)}/profile`, { key: 'nrn_bad', body: { display_name: 'X' } });
    const unknownBad = await t.request('PATCH', `${path('did:example:nobody')}/profile`, { key: 'nrn_bad', body: { display_name: 'X' } });
    assert.equal(knownBad.status, 401);
    assert.equal(unknownBad.status, 401);
    assert.equal(knownBad.body.detail, unknownBad.body.detail);
  });

  it('edits the profile as a merge patch and audits the field names, never the values', async () => {
    const r = await insertRelationship(t.neuron, { profile: { display_name: 'Dorothy Vaughan', preferred_language: 'en' } });
    const patched = await t.request('PATCH', `${path(r.patientAgentId)}/profile`, {
      key: t.keys.write,
      body: { date_of_birth: '1910-09-20', preferred_language: null },
    });
    assert.equal(patched.status, 200, patched.text);
    assert.deepEqual(patched.body.profile, { display_name: 'Dorothy Vaughan', date_of_birth: '1910-09-20' });

    const mergePatch = await t.request('PATCH', `${path(r.patientAgentId)}/profile`, {
      key: t.keys.write,
      body: JSON.stringify({ display_name: 'D. Vaughan' }),
      headers: { 'content-type': 'application/merge-patch+json' },
    });
    assert.equal(mergePatch.status, 200, mergePatch.text);
    assert.equal(mergePatch.body.profile.display_name, 'D. Vaughan');

    const events = await t.neuron.storage.db
      .selectFrom('audit_log')
      .selectAll()
      .where('event_type', '=', 'patient.profile_updated')
      .orderBy('seq')
      .execute();
    const mine = events.filter((e) => e.details.includes(r.patientAgentId));
    assert.equal(mine.length, 2);
    assert.deepEqual((JSON.parse(mine[0]!.details) as { fields: string[] }).fields.sort(), ['date_of_birth', 'preferred_language']);
    assert.equal(mine[0]!.actor, 'api-key:writer');
    for (const event of mine) {
      assert.ok(!event.details.includes('1910') && !event.details.includes('Vaughan'), 'no demographics in the audit log');
    }
  });

  it('refuses other fields, wrong types and impossible dates with 400 naming the field, changing nothing', async () => {
    const r = await insertRelationship(t.neuron, { profile: { display_name: 'Mary Jackson' } });
    const cases: Array<[unknown, string]> = [
      [{ ssn: '000-00-0000' }, 'body.ssn'],
      [{ display_name: 42 }, 'body.display_name'],
      [{ date_of_birth: '1921-02-30' }, 'body.date_of_birth'],
      [{ preferred_language: 'not a language tag' }, 'body.preferred_language'],
      [{ display_name: 'line\nbreak' }, 'body.display_name'],
      // A right-to-left override would show "Mary Johnson" as another name in every list.
      [{ display_name: 'Mary \u202Enosnhoj' }, 'body.display_name'],
      [{ display_name: 'Mary \u2067Jackson\u2069' }, 'body.display_name'],
      [{ display_name: 'Mary\u200FJackson' }, 'body.display_name'],
    ];
    for (const [body, field] of cases) {
      const response = await t.request('PATCH', `${path(r.patientAgentId)}/profile`, { key: t.keys.write, body });
      assertProblem(response, 400, 'VALIDATION_FAILED');
      assert.ok(
        response.body.errors.some((e: { path: string }) => e.path === field),
        `${JSON.stringify(body)} names ${field}: ${response.text}`,
      );
      assert.ok(!response.text.includes('000-00-0000'), 'the value is not echoed');
    }
    assertProblem(await t.request('PATCH', `${path(r.patientAgentId)}/profile`, { key: t.keys.write, body: {} }), 400, 'VALIDATION_FAILED');
    assertProblem(
      await t.request('PATCH', `${path(r.patientAgentId)}/profile`, { key: t.keys.read, body: { display_name: 'X' } }),
      403,
      'FORBIDDEN',
    );
    assertProblem(
      await t.request('PATCH', `${path('did:example:nobody')}/profile`, { key: t.keys.write, body: { display_name: 'X' } }),
      404,
      'NOT_FOUND',
    );
    const unchanged = await t.request('GET', path(r.patientAgentId), { key: t.keys.read });
    assert.deepEqual(unchanged.body.profile, { display_name: 'Mary Jackson' });
  });

  it('deletes the profile but keeps the entry, the relationship and the audit trail', async () => {
    const r = await insertRelationship(t.neuron, { profile: { display_name: 'Annie Easley', date_of_birth: '1933-04-23' } });
    assertProblem(await t.request('DELETE', `${path(r.patientAgentId)}/profile`, { key: t.keys.read }), 403, 'FORBIDDEN');
    const deleted = await t.request('DELETE', `${path(r.patientAgentId)}/profile`, { key: t.keys.write });
    assert.equal(deleted.status, 204);
    assert.equal(deleted.text, '');
    const entry = await t.request('GET', path(r.patientAgentId), { key: t.keys.read });
    assert.equal(entry.status, 200);
    assert.equal(entry.body.profile, null);
    const relationship = await t.request('GET', `/v1/relationships/${r.id}`, { key: t.keys.read });
    assert.equal(relationship.body.status, 'active');
    const audit = await t.neuron.storage.db
      .selectFrom('audit_log')
      .selectAll()
      .where('event_type', '=', 'patient.profile_deleted')
      .execute();
    const event = audit.find((e) => e.details.includes(r.patientAgentId));
    assert.ok(event);
    assert.equal(event.actor, 'api-key:writer');
    assert.ok(!event.details.includes('Easley'));
    assert.equal((await t.request('DELETE', `${path(r.patientAgentId)}/profile`, { key: t.keys.write })).status, 204, 'idempotent');
    assertProblem(await t.request('DELETE', `${path('did:example:nobody')}/profile`, { key: t.keys.write }), 404, 'NOT_FOUND');
  });
});
