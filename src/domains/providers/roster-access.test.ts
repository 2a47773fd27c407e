/**
 * Issue 13, "the roster only in admin hands": every roster change over REST needs the admin scope;
 * a write key gets a coded 403 problem on each route and changes nothing; an admin key succeeds and
 * the audit entry names the key's id as well as its label.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestNeuron, type TestNeuron } from '../../../test/helpers/neuron.ts';
import { auditEntries } from '../../../test/helpers/records.ts';
import { api, createApiKey } from '../../../test/helpers/providers.ts';

const NPI = '1376841239';
const ENDPOINT = 'wss://roster.example/agent';

let t: TestNeuron;
let writer: string;
let admin: string;
let adminKeyId: string;

before(async () => {
  t = await startTestNeuron();
  writer = await createApiKey(t.neuron, ['write'], 'app-writer');
  admin = await createApiKey(t.neuron, ['admin'], 'roster-admin');
  adminKeyId = (await t.neuron.storage.db.selectFrom('api_keys').select('id').where('label', '=', 'roster-admin').executeTakeFirstOrThrow())
    .id;
});
after(async () => t.stop());

/** Every roster change, in an order that succeeds for an admin, with the audit event it leaves. */
const ROSTER_ROUTES: Array<{ method: string; path: string; body?: unknown; event: string }> = [
  { method: 'POST', path: '/v1/providers', body: { npi: NPI, name: 'Dr. Roster' }, event: 'provider.created' },
  { method: 'PATCH', path: `/v1/providers/${NPI}`, body: { provider_endpoint: ENDPOINT }, event: 'provider.updated' },
  {
    method: 'PATCH',
    path: `/v1/providers/${NPI}`,
    body: { notification_url: 'https://roster.example/notices' },
    event: 'provider.updated',
  },
  { method: 'POST', path: `/v1/providers/${NPI}/approve`, body: {}, event: 'provider.approved' },
  { method: 'POST', path: `/v1/providers/${NPI}/approve`, body: { rotate: true }, event: 'provider.approved' },
  { method: 'POST', path: `/v1/providers/${NPI}/suspend`, body: { reason: 'review' }, event: 'provider.suspended' },
  { method: 'DELETE', path: `/v1/providers/${NPI}`, event: 'provider.removed' },
];

describe('roster changes need admin', () => {
  test('a write key gets 403 FORBIDDEN (problem+json) on every roster route, and nothing changes', async () => {
    const before = await t.neuron.storage.db.selectFrom('audit_log').select('seq').execute();
    for (const route of ROSTER_ROUTES) {
      const response = await api(t.url, route.method, route.path, { token: writer, body: route.body });
      assert.equal(response.status, 403, `${route.method} ${route.path}`);
      assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.equal(response.body.code, 'FORBIDDEN');
      assert.match(response.body.detail, /admin/);
    }
    assert.equal((await api(t.url, 'GET', `/v1/providers/${NPI}`, { token: admin })).status, 404, 'nothing was created');
    assert.equal((await t.neuron.storage.db.selectFrom('audit_log').select('seq').execute()).length, before.length);
  });

  test('an admin key succeeds on each, and each change is audited with the key id', async () => {
    for (const route of ROSTER_ROUTES) {
      const response = await api(t.url, route.method, route.path, { token: admin, body: route.body });
      assert.ok(
        response.status >= 200 && response.status < 300,
        `${route.method} ${route.path}: ${response.status} ${JSON.stringify(response.body)}`,
      );
      const last = (await auditEntries(t.neuron, route.event)).at(-1);
      assert.equal(last?.actor, 'api-key:roster-admin');
      assert.equal(last?.details['key_id'], adminKeyId, route.event);
    }
  });

  test('reading the roster still needs only read', async () => {
    const reader = await createApiKey(t.neuron, ['read'], 'roster-reader');
    assert.equal((await api(t.url, 'GET', '/v1/providers', { token: reader })).status, 200);
  });
});
