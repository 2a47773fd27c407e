/**
 * The HTTP surface as a whole: the OpenAPI document and reference page, security headers, CORS,
 * body and time limits, problem documents for bad input, deny by default, metrics, and the error
 * catalogue's documentation.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { validate, compileErrors } from '@readme/openapi-parser';
import { ERROR_CATALOGUE, problemType } from '../foundation/errors/index.ts';
import { createHttpApp } from '../http/app.ts';
import { authentication } from '../http/authentication.ts';
import { looksLikeApiKey } from '../domains/api-keys/index.ts';
import { assertProblem, insertRelationship, startApiNeuron, type ApiTestNeuron } from '../../test/helpers/api.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

describe('API gateway', () => {
  let t: ApiTestNeuron;
  before(async () => {
    t = await startApiNeuron();
  });
  after(async () => {
    await t.checkConformance();
    await t.stop();
  });

  describe('OpenAPI document and reference page', () => {
    it('serves a valid OpenAPI 3.1 document at /openapi.json', async () => {
      const response = await fetch(`${t.url}/openapi.json`);
      assert.equal(response.status, 200);
      const document = (await response.json()) as Record<string, any>;
      assert.equal(document['openapi'], '3.1.0');
      const result = await validate(structuredClone(document) as never);
      assert.equal(result.valid, true, result.valid ? '' : compileErrors(result));
    });

    it('documents every route with its security, scope and problem responses', async () => {
      const document = (await (await fetch(`${t.url}/openapi.json`)).json()) as Record<string, any>;
      assert.deepEqual(Object.keys(document['components'].securitySchemes).sort(), ['apiKeyHeader', 'bearerApiKey', 'providerCredential']);
      const expected = [
        'GET /v1/organization',
        'GET /v1/relationships',
        'GET /v1/relationships/{id}',
        'POST /v1/relationships/{id}/suspend',
        'POST /v1/relationships/{id}/resume',
        'POST /v1/relationships/{id}/terminate',
        'GET /v1/patients',
        'GET /v1/patients/{patient_agent_id}',
        'PATCH /v1/patients/{patient_agent_id}/profile',
        'DELETE /v1/patients/{patient_agent_id}/profile',
        'GET /v1/blocks',
        'POST /v1/blocks',
        'DELETE /v1/blocks/{patient_agent_id}',
        'GET /v1/audit/events',
        'POST /v1/audit/verify',
        'GET /v1/webhooks',
        'POST /v1/webhooks',
        'GET /v1/webhooks/{id}',
        'DELETE /v1/webhooks/{id}',
        'GET /v1/api-keys',
        'POST /v1/api-keys',
        'DELETE /v1/api-keys/{id}',
        'GET /v1/status',
        'GET /metrics',
        'GET /health/live',
        'GET /health/ready',
      ];
      const operations = new Map<string, any>();
      for (const [route, methods] of Object.entries(document['paths'] as Record<string, Record<string, unknown>>)) {
        for (const [method, operation] of Object.entries(methods)) operations.set(`${method.toUpperCase()} ${route}`, operation);
      }
      for (const name of expected) assert.ok(operations.has(name), `${name} is documented`);
      for (const [name, operation] of operations) {
        const success = Object.keys(operation.responses).filter((status) => status.startsWith('2'));
        assert.ok(success.length > 0, `${name} documents its success answer`);
        assert.ok(Array.isArray(operation.security), `${name} states its security`);
        if (operation.security.length > 0) {
          for (const status of ['401', '403', '429']) assert.ok(operation.responses[status], `${name} documents ${status}`);
          const unauthenticated = operation.responses['401'].$ref
            ? document['components'].responses[operation.responses['401'].$ref.replace('#/components/responses/', '')]
            : operation.responses['401'];
          assert.ok(unauthenticated.content['application/problem+json'], `${name} 401 is a problem document`);
        } else {
          assert.ok(!expected.includes(name) || name.startsWith('GET /health/'), `${name} needs a credential`);
        }
        if (operation.requestBody) assert.ok(operation.responses['400'] && operation.responses['413'], `${name} documents 400 and 413`);
      }
      assert.equal(operations.get('GET /v1/relationships')['x-required-scope'], 'read');
      assert.equal(operations.get('POST /v1/relationships/{id}/terminate')['x-required-scope'], 'write');
      assert.equal(operations.get('POST /v1/blocks')['x-required-scope'], 'write');
      assert.equal(operations.get('POST /v1/api-keys')['x-required-scope'], 'admin');
      assert.deepEqual(Object.keys(document['webhooks']).sort(), [
        'patient.blocked',
        'relationship.established',
        'relationship.terminated',
      ]);
    });

    it('serves the interactive reference at /docs with its own content security policy', async () => {
      const response = await fetch(`${t.url}/docs`, { redirect: 'follow' });
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type') ?? '', /text\/html/);
      assert.match(await response.text(), /swagger/i);
      assert.match(response.headers.get('content-security-policy') ?? '', /script-src 'self'/);
      const spec = await fetch(`${t.url}/docs/json`);
      assert.equal(spec.status, 200);
      assert.equal(((await spec.json()) as { openapi: string }).openapi, '3.1.0');
    });

    it('is not served when api.docs_enabled is false', async () => {
      const quiet = await startApiNeuron({ config: { api: { docs_enabled: false } } });
      try {
        assert.equal((await fetch(`${quiet.url}/openapi.json`)).status, 404);
        assert.equal((await fetch(`${quiet.url}/docs`)).status, 404);
        assert.equal((await quiet.request('GET', '/v1/organization', { key: quiet.keys.read })).status, 200);
      } finally {
        await quiet.stop();
      }
    });
  });

  describe('security headers and CORS', () => {
    it('sets security headers on API answers and no HSTS without TLS', async () => {
      const response = await t.request('GET', '/v1/organization', { key: t.keys.read });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(response.headers.get('x-frame-options'), 'SAMEORIGIN');
      assert.equal(response.headers.get('content-security-policy'), "default-src 'none';frame-ancestors 'none'");
      assert.equal(response.headers.get('referrer-policy'), 'no-referrer');
      assert.equal(response.headers.get('x-powered-by'), null);
      assert.equal(response.headers.get('strict-transport-security'), null);
    });

    it('allows no cross-origin caller by default', async () => {
      const simple = await t.request('GET', '/v1/organization', { key: t.keys.read, headers: { origin: 'https://evil.example' } });
      assert.equal(simple.headers.get('access-control-allow-origin'), null);
      const preflight = await fetch(`${t.url}/v1/organization`, {
        method: 'OPTIONS',
        headers: {
          origin: 'https://evil.example',
          'access-control-request-method': 'GET',
          'access-control-request-headers': 'authorization',
        },
      });
      assert.equal(preflight.headers.get('access-control-allow-origin'), null);
    });

    it('allows exactly the configured origins', async () => {
      const cors = await startApiNeuron({ config: { api: { cors_origins: ['https://app.example'] } } });
      try {
        const preflight = await fetch(`${cors.url}/v1/relationships`, {
          method: 'OPTIONS',
          headers: {
            origin: 'https://app.example',
            'access-control-request-method': 'GET',
            'access-control-request-headers': 'authorization',
          },
        });
        assert.ok(preflight.status < 300, `preflight answered ${preflight.status}`);
        assert.equal(preflight.headers.get('access-control-allow-origin'), 'https://app.example');
        const allowed = await cors.request('GET', '/v1/relationships', { key: cors.keys.read, headers: { origin: 'https://app.example' } });
        assert.equal(allowed.headers.get('access-control-allow-origin'), 'https://app.example');
        const other = await cors.request('GET', '/v1/relationships', { key: cors.keys.read, headers: { origin: 'https://other.example' } });
        assert.equal(other.headers.get('access-control-allow-origin'), null);
      } finally {
        await cors.stop();
      }
    });
  });

  describe('bad input', () => {
    it('answers malformed JSON with MALFORMED_JSON and changes nothing', async () => {
      const relationship = await insertRelationship(t.neuron);
      const response = await t.request('POST', `/v1/relationships/${relationship.id}/suspend`, {
        key: t.keys.write,
        body: '{"reason": "oops",',
      });
      assertProblem(response, 400, 'MALFORMED_JSON');
      const after = await t.request('GET', `/v1/relationships/${relationship.id}`, { key: t.keys.read });
      assert.equal(after.body.status, 'active');
    });

    it('names the field for wrong types, unknown fields and unknown query parameters', async () => {
      const relationship = await insertRelationship(t.neuron);
      const wrongType = await t.request('POST', `/v1/relationships/${relationship.id}/suspend`, {
        key: t.keys.write,
        body: { reason: 42 },
      });
      assertProblem(wrongType, 400, 'VALIDATION_FAILED');
      assert.deepEqual(
        wrongType.body.errors.map((e: { path: string }) => e.path),
        ['body.reason'],
      );

      const unknown = await t.request('POST', `/v1/relationships/${relationship.id}/suspend`, {
        key: t.keys.write,
        body: { reason: 'ok', notify: true },
      });
      assertProblem(unknown, 400, 'VALIDATION_FAILED');
      assert.deepEqual(
        unknown.body.errors.map((e: { path: string }) => e.path),
        ['body.notify'],
      );

      const query = await t.request('GET', '/v1/relationships?stauts=active', { key: t.keys.read });
      assertProblem(query, 400, 'VALIDATION_FAILED');
      assert.deepEqual(
        query.body.errors.map((e: { path: string }) => e.path),
        ['querystring.stauts'],
      );

      const limit = await t.request('GET', '/v1/relationships?limit=100000', { key: t.keys.read });
      assertProblem(limit, 400, 'VALIDATION_FAILED');
      assert.deepEqual(
        limit.body.errors.map((e: { path: string }) => e.path),
        ['querystring.limit'],
      );

      const after = await t.request('GET', `/v1/relationships/${relationship.id}`, { key: t.keys.read });
      assert.equal(after.body.status, 'active');
    });

    it('never echoes what was sent, secrets included', async () => {
      const secret = 'nrn_aaaaaaaaaaaa_SECRETSECRETSECRETSECRETSECRET1234abcdef';
      const unknown = await t.request('POST', '/v1/blocks', {
        key: t.keys.admin,
        body: { patient_agent_id: 'did:example:x', reason: 'r', api_key: secret },
      });
      assertProblem(unknown, 400, 'VALIDATION_FAILED');
      assert.ok(!unknown.text.includes('SECRET'), unknown.text);
      const badValue = await t.request('POST', '/v1/api-keys', {
        key: t.keys.admin,
        body: { label: `has space ${secret}`, scopes: ['read'] },
      });
      assertProblem(badValue, 400, 'VALIDATION_FAILED');
      assert.ok(!badValue.text.includes('SECRET'), badValue.text);
      const badKey = await t.request('GET', '/v1/organization', { key: secret });
      assertProblem(badKey, 401, 'UNAUTHENTICATED');
      assert.ok(!badKey.text.includes('SECRET'), badKey.text);
    });

    it('refuses SQL-looking strings in typed fields with 400 naming the field, and treats them as text elsewhere', async () => {
      const injection = "1' OR '1'='1";
      const npi = await t.request('GET', `/v1/relationships?provider_npi=${encodeURIComponent(injection)}`, { key: t.keys.read });
      assertProblem(npi, 400, 'VALIDATION_FAILED');
      assert.deepEqual(
        npi.body.errors.map((e: { path: string }) => e.path),
        ['querystring.provider_npi'],
      );
      const id = await t.request('POST', `/v1/relationships/${encodeURIComponent("x'; DROP TABLE relationships; --")}/terminate`, {
        key: t.keys.write,
        body: { reason: 'r' },
      });
      assertProblem(id, 400, 'VALIDATION_FAILED');
      assert.deepEqual(
        id.body.errors.map((e: { path: string }) => e.path),
        ['params.id'],
      );
      const search = await t.request('GET', `/v1/patients?search=${encodeURIComponent("%' OR 1=1 --")}`, { key: t.keys.read });
      assert.equal(search.status, 200);
      assert.deepEqual(search.body.items, []);
      const count = await t.neuron.storage.db
        .selectFrom('relationships')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      assert.ok(Number(count.n) > 0, 'the table is still there');
    });

    it('refuses cursors it did not issue', async () => {
      for (const cursor of ['not-a-cursor', Buffer.from('["x"]').toString('base64url'), 'a'.repeat(600), '!!!']) {
        const response = await t.request('GET', `/v1/relationships?after=${encodeURIComponent(cursor)}`, { key: t.keys.read });
        assert.equal(response.status, 400, cursor);
        assert.ok(['INVALID_CURSOR', 'VALIDATION_FAILED'].includes(response.body.code), response.text);
        assert.ok(
          response.body.errors.some((e: { path: string }) => e.path.endsWith('after')),
          response.text,
        );
      }
    });

    it('answers a non-JSON body with 415', async () => {
      const relationship = await insertRelationship(t.neuron);
      const response = await t.request('POST', `/v1/relationships/${relationship.id}/suspend`, {
        key: t.keys.write,
        body: 'reason=x',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      assertProblem(response, 415, 'UNSUPPORTED_MEDIA_TYPE');
    });

    it('answers unknown routes with ROUTE_NOT_FOUND', async () => {
      const response = await t.request('GET', '/v1/nothing-here', { key: t.keys.read });
      assertProblem(response, 404, 'ROUTE_NOT_FOUND');
    });

    it('answers a known path used with another method with 405 METHOD_NOT_ALLOWED and Allow', async () => {
      const relationship = await insertRelationship(t.neuron);
      const onItem = await t.request('DELETE', `/v1/relationships/${relationship.id}`, { key: t.keys.admin });
      assertProblem(onItem, 405, 'METHOD_NOT_ALLOWED');
      assert.equal(onItem.headers.get('allow'), 'GET, HEAD');
      const onHealth = await t.request('POST', '/health/live', {});
      assertProblem(onHealth, 405, 'METHOD_NOT_ALLOWED');
      assert.equal(onHealth.headers.get('allow'), 'GET, HEAD');
      // A path parameter stands for one segment only: a deeper path is unknown, not a wrong method.
      assertProblem(
        await t.request('GET', `/v1/relationships/${relationship.id}/no-such-action`, { key: t.keys.read }),
        404,
        'ROUTE_NOT_FOUND',
      );
      // Nothing was changed by the refused request.
      assert.equal((await t.request('GET', `/v1/relationships/${relationship.id}`, { key: t.keys.read })).body.status, 'active');
    });

    it('refuses a body over server.body_limit_bytes with 413 and changes nothing', async () => {
      const small = await startApiNeuron({ config: { server: { body_limit_bytes: 1024 } } });
      try {
        const response = await small.request('POST', '/v1/blocks', {
          key: small.keys.admin,
          body: { patient_agent_id: 'did:example:big', reason: 'x'.repeat(2_000) },
        });
        assertProblem(response, 413, 'BODY_TOO_LARGE');
        const blocks = await small.request('GET', '/v1/blocks', { key: small.keys.admin });
        assert.deepEqual(blocks.body.items, []);
      } finally {
        await small.stop();
      }
    });

    it('answers a request that does not arrive within server.request_timeout_ms with a REQUEST_TIMEOUT problem', async () => {
      const slow = await startApiNeuron({ config: { server: { request_timeout_ms: 1_000 } } });
      try {
        const { port } = new URL(slow.url);
        const began = Date.now();
        const answer = await new Promise<string>((resolve, reject) => {
          const socket = connect(Number(port), '127.0.0.1', () => {
            // Headers never finished.
            socket.write('POST /v1/blocks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n');
          });
          let received = '';
          socket.on('data', (chunk) => {
            received += chunk.toString();
          });
          socket.on('close', () => resolve(received));
          socket.on('error', reject);
          setTimeout(() => {
            socket.destroy();
            reject(new Error('no answer within 10 s'));
          }, 10_000).unref();
        });
        assert.match(answer, /^HTTP\/1\.1 408 /);
        assert.match(answer, /application\/problem\+json/);
        assert.match(answer, /"code":"REQUEST_TIMEOUT"/);
        assert.ok(Date.now() - began >= 900, 'not before the deadline');
      } finally {
        await slow.stop();
      }
    });
  });

  describe('deny by default', () => {
    it('refuses a /v1 route that declares no authentication, and leaves undeclared routes outside /v1 alone', async () => {
      const app = await createHttpApp({
        config: t.neuron.config,
        tls: null,
        logger: t.neuron.logger,
        readiness: async () => [],
        hooks: [
          authentication({
            apiKeys: t.apiKeys,
            looksLikeApiKey,
            audit: t.neuron.audit,
            logger: t.neuron.logger,
            rateLimitPerMinute: 100,
            authFailureLimitPerMinute: 100,
            metrics: new (await import('prom-client')).Registry(),
          }),
        ],
        routes: [
          async (instance) => {
            instance.get('/v1/naked', async () => ({ secret: 'should never be served' }));
            instance.get('/public-thing', async () => ({ ok: true }));
          },
        ],
      });
      await app.listen({ host: '127.0.0.1', port: 0 });
      try {
        const address = app.server.address() as { port: number };
        const naked = await fetch(`http://127.0.0.1:${address.port}/v1/naked`, { headers: { authorization: `Bearer ${t.keys.admin}` } });
        assert.equal(naked.status, 403);
        const body = (await naked.json()) as { code: string };
        assert.equal(body.code, 'FORBIDDEN');
        const open = await fetch(`http://127.0.0.1:${address.port}/public-thing`);
        assert.equal(open.status, 200);
      } finally {
        await app.close();
      }
    });
  });

  describe('failed authentications of other credentials', () => {
    it('counts provider credentials refused by their own hook against the address, and locks it out', async () => {
      const { NeuronError } = await import('../foundation/errors/index.ts');
      const rejectingProviderHook = async (instance: import('fastify').FastifyInstance): Promise<void> => {
        instance.addHook('onRequest', async (request) => {
          if (request.routeOptions.config.auth?.kind !== 'provider') return;
          if (request.headers.authorization === 'Bearer nprv_good') {
            request.principal = { kind: 'provider', npi: '1679576722', registrationId: null };
            return;
          }
          throw new NeuronError('UNAUTHENTICATED', { message: 'the provider credential is not valid' });
        });
      };
      (rejectingProviderHook as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
      const app = await createHttpApp({
        config: t.neuron.config,
        tls: null,
        logger: t.neuron.logger,
        readiness: async () => [],
        hooks: [
          authentication({
            apiKeys: t.apiKeys,
            looksLikeApiKey,
            audit: t.neuron.audit,
            logger: t.neuron.logger,
            rateLimitPerMinute: 100,
            authFailureLimitPerMinute: 3,
            metrics: new (await import('prom-client')).Registry(),
          }),
          rejectingProviderHook,
        ],
        routes: [
          async (instance) => {
            instance.get('/v1/provider-thing', { config: { auth: { kind: 'provider' } } }, async () => ({ ok: true }));
          },
        ],
      });
      await app.listen({ host: '127.0.0.1', port: 0 });
      try {
        const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/v1/provider-thing`;
        assert.equal((await fetch(url, { headers: { authorization: 'Bearer nprv_good' } })).status, 200);
        for (let i = 0; i < 3; i += 1) assert.equal((await fetch(url, { headers: { authorization: 'Bearer nprv_guess' } })).status, 401);
        const locked = await fetch(url, { headers: { authorization: 'Bearer nprv_good' } });
        assert.equal(locked.status, 429);
        assert.equal(((await locked.json()) as { code: string }).code, 'RATE_LIMITED');
        assert.ok(Number(locked.headers.get('retry-after')) >= 1);
        const audit = await t.neuron.storage.db.selectFrom('audit_log').selectAll().where('event_type', '=', 'api.auth_lockout').execute();
        assert.ok(audit.some((e) => (JSON.parse(e.details) as { last_reason?: string }).last_reason === 'credential'));
      } finally {
        await app.close();
      }
    });
  });

  describe('metrics', () => {
    it('serves Prometheus text to admin keys only', async () => {
      assertProblem(await t.request('GET', '/metrics'), 401, 'UNAUTHENTICATED');
      assertProblem(await t.request('GET', '/metrics', { key: t.keys.write }), 403, 'FORBIDDEN');
      const response = await t.request('GET', '/metrics', { key: t.keys.admin });
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
      assert.match(response.text, /neuron_api_requests_total/);
    });

    it('serves them without a key on the loopback listener at api.metrics_port', async () => {
      const port = await freePort();
      const local = await startApiNeuron({ config: { api: { metrics_port: port } } });
      try {
        await local.request('GET', '/v1/organization', { key: local.keys.read });
        const response = await fetch(`http://127.0.0.1:${port}/metrics`);
        assert.equal(response.status, 200);
        assert.match(await response.text(), /neuron_api_requests_total\{[^}]*route="\/v1\/organization"/);
        assert.equal((await fetch(`http://127.0.0.1:${port}/v1/organization`)).status, 404);
      } finally {
        await local.stop();
      }
      await assert.rejects(fetch(`http://127.0.0.1:${port}/metrics`), 'the listener closes with the Neuron');
    });
  });

  // Last, so that every test above went through schemas compiled on their route's first use.
  describe('route schemas', () => {
    it('compiles every request and response schema of every route (at run time each compiles on first use)', () => {
      // Throws the first schema ajv or fast-json-stringify cannot compile.
      const schemas = t.neuron.http.routeSchemas.compileAll();
      // 79 validated request parts and 106 response schemas today: far fewer would mean that the
      // compilers were bypassed and fastify compiled (or skipped) them itself.
      assert.ok(schemas >= 150, `only ${schemas} route schemas reached the compilers`);
    });
  });

  describe('docs/errors.md', () => {
    it('documents every code of the error catalogue, with the anchor its problem type points to', () => {
      const text = readFileSync(path.join(repoRoot, 'docs/errors.md'), 'utf8');
      for (const [code, definition] of Object.entries(ERROR_CATALOGUE)) {
        assert.ok(text.includes(`### \`${code}\``), `${code} has a section`);
        const anchor = problemType(code as keyof typeof ERROR_CATALOGUE).split('#')[1]!;
        assert.ok(text.includes(`<a id="${anchor}"></a>`), `${code} has the anchor #${anchor}`);
        const row = new RegExp(`\\| \`${code}\` \\| ${definition.status} \\| ${definition.closeCode ?? '—'} \\|`);
        assert.match(text, row, `${code} is in the summary table with HTTP ${definition.status} and close ${definition.closeCode ?? '—'}`);
      }
    });
  });
});
