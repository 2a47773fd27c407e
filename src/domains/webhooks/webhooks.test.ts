/**
 * /v1/webhooks: subscriptions (admin scope) and the secret shown once. Delivery itself is in
 * ./delivery.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { assertProblem, startApiNeuron, type ApiTestNeuron } from '../../../test/helpers/api.ts';

describe('/v1/webhooks', () => {
  let t: ApiTestNeuron;
  before(async () => {
    t = await startApiNeuron();
  });
  after(async () => {
    await t.checkConformance();
    await t.stop();
  });

  it('creates, lists, gets and deletes subscriptions; the secret is never shown again', async () => {
    const created = await t.request('POST', '/v1/webhooks', {
      key: t.keys.admin,
      body: { url: 'http://127.0.0.1:9/billing', events: ['patient.blocked'], label: 'billing' },
    });
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
    const audit = await t.neuron.storage.db
      .selectFrom('audit_log')
      .select(['event_type', 'actor', 'details'])
      .where('event_type', 'in', ['webhook.created', 'webhook.deleted'])
      .execute();
    assert.deepEqual(
      audit.filter((e) => e.details.includes(id)).map((e) => [e.event_type, e.actor]),
      [
        ['webhook.created', 'api-key:admin'],
        ['webhook.deleted', 'api-key:admin'],
      ],
    );
    assert.ok(
      audit.every((e) => !e.details.includes('whsec_')),
      'the secret is not audited',
    );
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
      assert.ok(
        response.body.errors.some((e: { path: string }) => e.path === field),
        `${field}: ${response.text}`,
      );
      assert.ok(!response.text.includes('pass@'), 'credentials are not echoed');
    }
    assertProblem(await t.request('GET', '/v1/webhooks/not-a-uuid', { key: t.keys.admin }), 400, 'VALIDATION_FAILED');
    assertProblem(await t.request('GET', '/v1/webhooks/00000000-0000-4000-8000-000000000000', { key: t.keys.admin }), 404, 'NOT_FOUND');
    for (const key of [t.keys.read, t.keys.write]) {
      assertProblem(await t.request('GET', '/v1/webhooks', { key }), 403, 'FORBIDDEN');
      assertProblem(
        await t.request('POST', '/v1/webhooks', { key, body: { url: 'https://x.example/', events: ['patient.blocked'], label: 'x' } }),
        403,
        'FORBIDDEN',
      );
    }
    assertProblem(await t.request('GET', '/v1/webhooks'), 401, 'UNAUTHENTICATED');
  });
});

describe('/v1/webhooks and the outbound policy (loopback refused, the default)', () => {
  let t: ApiTestNeuron;
  before(async () => {
    t = await startApiNeuron({ config: { outbound: { allow_loopback: false } } });
  });
  after(async () => {
    await t.checkConformance();
    await t.stop();
  });

  it('refuses a URL naming a refused address with OUTBOUND_TARGET_REFUSED and writes nothing', async () => {
    const refused: Array<[string, RegExp]> = [
      ['http://169.254.169.254/latest/meta-data/', /link-local/],
      ['https://127.0.0.1:9/hooks', /loopback.*outbound\.allow_loopback/],
      ['https://[::ffff:127.0.0.1]:9/hooks', /loopback/],
      ['https://localhost:9/hooks', /loopback/],
      ['https://[fe80::1]/hooks', /link-local/],
      ['https://0.0.0.0/hooks', /unspecified/],
      ['http://203.0.113.7/hooks', /plain http.*outbound\.plain_http/],
    ];
    for (const [url, why] of refused) {
      const response = await t.request('POST', '/v1/webhooks', {
        key: t.keys.admin,
        body: { url, events: ['patient.blocked'], label: 'refused' },
      });
      assertProblem(response, 400, 'OUTBOUND_TARGET_REFUSED');
      const errors = response.body.errors as Array<{ path: string; message: string }>;
      assert.deepEqual(
        errors.map((e) => e.path),
        ['body.url'],
        url,
      );
      assert.match(errors[0]!.message, why, url);
    }
    const rows = await t.neuron.storage.db.selectFrom('webhook_subscriptions').select('id').execute();
    assert.equal(rows.length, 0, 'no subscription was written');
    const audit = await t.neuron.storage.db
      .selectFrom('audit_log')
      .select('event_type')
      .where('event_type', '=', 'webhook.created')
      .execute();
    assert.equal(audit.length, 0, 'nothing was audited as created');
  });

  it('accepts https to a host name and plain http to a private address', async () => {
    for (const url of ['https://hooks.example.org/neuron', 'http://192.168.10.20:8080/neuron']) {
      const response = await t.request('POST', '/v1/webhooks', {
        key: t.keys.admin,
        body: { url, events: ['patient.blocked'], label: 'allowed' },
      });
      assert.equal(response.status, 201, `${url}: ${response.text}`);
    }
  });
});
