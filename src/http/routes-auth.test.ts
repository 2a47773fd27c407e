/**
 * Every operation the OpenAPI document says needs an API key refuses, before looking at anything
 * else: no key (401), a key without the scope (403), a revoked key (401). Generated from the
 * document, so routes added later are covered too.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Scope } from '../foundation/rest/principal.ts';
import { startApiNeuron, type ApiTestNeuron } from '../../test/helpers/api.ts';

const SAMPLE_PARAMS: Record<string, string> = {
  id: '00000000-0000-4000-8000-000000000000',
  patient_agent_id: 'did%3Aexample%3Aanyone',
  npi: '1245319599',
  registration_id: '00000000-0000-4000-8000-000000000000',
  event_id: '00000000-0000-4000-8000-000000000000',
};

interface Operation {
  method: string;
  path: string;
  scope: Scope;
}

describe('authentication of every API key route', () => {
  let t: ApiTestNeuron;
  let operations: Operation[];
  let revoked: string;
  before(async () => {
    t = await startApiNeuron();
    const document = (await (await fetch(`${t.url}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { security?: Array<Record<string, unknown>>; 'x-required-scope'?: Scope }>>;
    };
    operations = [];
    for (const [template, methods] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        const scope = operation['x-required-scope'];
        if (scope === undefined) continue;
        const path = template.replace(/\{([^}]+)\}/g, (_, name: string) => SAMPLE_PARAMS[name] ?? 'x');
        operations.push({ method: method.toUpperCase(), path, scope });
      }
    }
    const key = await t.createKey(['admin'], { label: 'soon-revoked' });
    await t.apiKeys.revoke(key.id, 'cli');
    revoked = key.key;
  });
  after(async () => {
    await t.checkConformance();
    await t.stop();
  });

  it('covers the gateway routes', () => {
    assert.ok(operations.length >= 24, `${operations.length} operations`);
    for (const path of [
      '/v1/relationships',
      '/v1/patients',
      '/v1/blocks',
      '/v1/webhooks',
      '/v1/api-keys',
      '/v1/audit/events',
      '/v1/status',
      '/metrics',
    ]) {
      assert.ok(
        operations.some((o) => o.path === path),
        path,
      );
    }
  });

  it('refuses every one without a key with 401, the same answer whatever the path names', async () => {
    for (const operation of operations) {
      const response = await t.request(operation.method, operation.path);
      assert.equal(response.status, 401, `${operation.method} ${operation.path}: ${response.text}`);
      assert.equal(response.body.code, 'UNAUTHENTICATED');
    }
  });

  it('refuses a key without the scope with 403', async () => {
    const below: Record<Scope, Scope | null> = { read: null, write: 'read', admin: 'write' };
    for (const operation of operations) {
      const weaker = below[operation.scope];
      if (weaker === null) continue;
      const response = await t.request(operation.method, operation.path, { key: t.keys[weaker] });
      assert.equal(response.status, 403, `${operation.method} ${operation.path} with a ${weaker} key: ${response.text}`);
      assert.equal(response.body.code, 'FORBIDDEN');
    }
  });

  it('refuses a revoked key with 401', async () => {
    for (const operation of operations) {
      const response = await t.request(operation.method, operation.path, { key: revoked });
      assert.equal(response.status, 401, `${operation.method} ${operation.path}: ${response.text}`);
    }
  });
});
